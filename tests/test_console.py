"""The installed ``actbench`` command, run as a user runs it: the console script of this
environment, from a directory outside the checkout (so nothing is imported from the source
tree), in processes of its own: exit codes 0 / 1 / 2, an exhaustive sweep stopped by Ctrl-C
and killed with SIGKILL in the process-pool path and resumed to the uninterrupted row, and the
sweep on a Dask cluster of worker processes, named by ``--scheduler`` or
``$DASK_SCHEDULER_ADDRESS``."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
ACTBENCH = Path(sys.executable).with_name("actbench")

# 70 million inputs (every 61st bit pattern) in 512 chunks of one binade: a few seconds on 2
# cores, and ~6 ms a chunk, so a run stopped after its first chunks is far from done
SWEEP = ["audit", "--activation", "tanh", "--variant", "simd_f32_fast", "--direction", "forward",
         "--dtype", "float32", "--domain", "exhaustive", "--sweep-stride", "61", "--sweep-chunk",
         "1", "--jobs", "2"]
CHUNKS = 512


def _env(cache: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DASK_SCHEDULER_ADDRESS")}
    return {**env, "ACTBENCH_CACHE": str(cache), **extra}


def _run(args, cwd, env, timeout=300):
    return subprocess.run([str(ACTBENCH), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _row(out: Path) -> dict:
    """The sweep's row, without what differs between runs of the same sweep (its time, the
    chunks it resumed, where it stored them)."""
    row = pd.read_csv(out / "audit.csv", keep_default_na=False).iloc[0].to_dict()
    sweep = json.loads(row.pop("sweep"))
    for key in ("seconds", "resumed_chunks", "store"):
        sweep.pop(key)
    return {**row, "sweep": sweep}


def _stored(cache: Path) -> int:
    return len(list((cache / "sweeps").glob("*/*/chunk-*.json")))


# A test run started in the background (`timeout pytest`, `pytest &`) ignores SIGINT, and a
# child inherits that: the command must see Ctrl-C as a terminal's foreground job does.  So it
# starts through a shim that restores the default and execs it (a preexec_fn would fork the
# test process, which JAX, loaded by other tests, warns against)
_SIGINT_DEFAULT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                   "os.execv(sys.argv[1], sys.argv[1:])")


def _start(args, cwd, env):
    # a session of its own: the pool's processes are in its process group, as in a terminal
    return subprocess.Popen([sys.executable, "-c", _SIGINT_DEFAULT, str(ACTBENCH), *args],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _after_chunks(proc, cache: Path, at_least: int) -> int:
    """Wait until ``at_least`` chunks are stored (the run still going); return how many."""
    deadline = time.monotonic() + 120
    while _stored(cache) < at_least:
        assert proc.poll() is None, f"the sweep ended early:\n{proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "no chunk stored in 120 s"
        time.sleep(0.01)
    return _stored(cache)


def _group_gone(pgid: int, within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The sweep's row from one uninterrupted run (a local pool of two processes)."""
    work = tmp_path_factory.mktemp("uninterrupted")
    done = _run([*SWEEP, "--out", "out"], work, _env(work / "cache"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return _row(work / "out")


def test_the_script_is_the_installed_one():
    assert ACTBENCH.exists(), f"no console script beside {sys.executable}: install the package"


def test_exit_codes_0_1_2_outside_the_checkout(tmp_path):
    (tmp_path / "mine.py").write_text(
        "import numpy as np\n\n\ndef leaky_by_mistake(x):\n"
        "    return np.where(x > 0, x, x / 2).astype(x.dtype)  # relu wanted\n")
    env = _env(tmp_path / "cache")
    common = ["audit", "--activation", "relu", "--variant", "accurate", "--direction", "forward",
              "--dtype", "float32", "--domain", "core"]
    ok = _run([*common, "--out", "ok"], tmp_path, env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 rows, 0 failed" in ok.stdout
    bad = _run([*common, "--impl", "mine:leaky_by_mistake", "--out", "bad"], tmp_path, env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    # the failure names the implementation, the row and a worst input in hex with got / want
    assert "FAIL [mine:leaky_by_mistake] relu.-.forward float32 core" in bad.stdout
    assert " got -" in bad.stdout and "want 0.0" in bad.stdout and "x=-0x1." in bad.stdout
    usage = _run(["audit", "--activation", "nope", "--out", "u"], tmp_path, env)
    assert usage.returncode == 2 and "nope" in usage.stderr and not (tmp_path / "u").exists()


def test_ctrl_c_then_sigkill_then_the_same_command_gives_the_uninterrupted_row(tmp_path, uninterrupted):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) exits 130 saying where the
    finished chunks are; SIGKILL of the command in the middle of the resumed run leaves no
    process of its pool behind; the same command then measures only what is missing and
    writes the uninterrupted run's row."""
    cache = tmp_path / "cache"
    env = _env(cache)
    args = [*SWEEP, "--out", "out"]
    first = _start(args, tmp_path, env)
    _after_chunks(first, cache, 8)
    os.killpg(first.pid, signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err[-2000:]
    assert "interrupted:" in err and "the same command resumes from there" in err
    stored = _stored(cache)
    assert 8 <= stored < CHUNKS
    assert _group_gone(first.pid)

    second = _start(args, tmp_path, env)
    at_kill = _after_chunks(second, cache, stored + 8)
    os.kill(second.pid, signal.SIGKILL)  # the command alone, as `kill -9 PID` does
    second.communicate(timeout=60)
    assert second.returncode == -signal.SIGKILL
    assert _group_gone(second.pid), "pool processes outlived the killed command"
    assert at_kill < CHUNKS

    last = _run(args, tmp_path, env)
    assert last.returncode == 0, last.stdout[-2000:] + last.stderr[-2000:]
    resumed = json.loads(pd.read_csv(tmp_path / "out" / "audit.csv").iloc[0]["sweep"])
    assert at_kill <= resumed["resumed_chunks"] < CHUNKS
    assert _row(tmp_path / "out") == uninterrupted


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and two worker processes on loopback, as `dask scheduler` and `dask worker`
    start them."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None) as running:
        yield running.scheduler_address


def test_a_dask_cluster_gives_the_local_pools_row(tmp_path, uninterrupted, cluster):
    by_option = _run([*SWEEP, "--scheduler", cluster, "--out", "option"], tmp_path,
                     _env(tmp_path / "cache-option"))
    assert by_option.returncode == 0, by_option.stdout[-2000:] + by_option.stderr[-2000:]
    assert _row(tmp_path / "option") == uninterrupted
    by_env = _run([*SWEEP, "--out", "env"], tmp_path,
                  _env(tmp_path / "cache-env", DASK_SCHEDULER_ADDRESS=cluster))
    assert by_env.returncode == 0, by_env.stdout[-2000:] + by_env.stderr[-2000:]
    assert _row(tmp_path / "env") == uninterrupted
    for out in ("option", "env"):
        meta = json.loads((tmp_path / out / "audit.json").read_text())
        assert meta["scheduler"] == cluster


def test_without_dask_the_scheduler_option_is_one_error(tmp_path):
    # dask.distributed made unimportable for the command: a package of that name that raises
    shadow = tmp_path / "shadow" / "distributed"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named distributed')\n")
    done = _run([*SWEEP, "--scheduler", "tcp://127.0.0.1:9", "--out", "o"], tmp_path,
                _env(tmp_path / "cache", PYTHONPATH=str(tmp_path / "shadow")))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "pip install 'actbench-ulp[dask]'" in done.stderr and "Traceback" not in done.stderr
