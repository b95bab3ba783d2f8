"""`actbench gate --against REV`: who goes first, each benchmark's rounds, the paired ratio and
its interval, a side's rounds written as `actbench bench` writes them, bad revisions and
failing workers; the whole gate with faked workers under a machine whose speed jumps for
stretches (unchanged code passes, a 25 % slower kernel fails by name and is confirmed); and one
real gate, in a temporary clone, of a commit that makes one kernel slower and another less
accurate, against the revision before it (both halves fail, naming them)."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actbench_ulp import cli
from actbench_ulp.gate import against, alternate
from actbench_ulp.gate.stats import MIN_SAMPLES, paired_log_ratio

TOP = Path(__file__).resolve().parents[1]


def _main(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_who_goes_first_alternates_so_a_steady_drift_favours_neither_side():
    firsts = [[alternate.first_side(r, i, 0) for i in range(7)] for r in range(6)]
    for i in range(7):  # each benchmark: base first every other round
        assert [row[i] for row in firsts] == ["base", "new"] * 3 or \
            [row[i] for row in firsts] == ["new", "base"] * 3
    # neighbouring benchmarks start on opposite sides, and the next session flips them all
    assert firsts[0][:2] == ["base", "new"]
    assert [alternate.first_side(0, i, 1) for i in range(2)] == ["new", "base"]


def test_long_rounds_get_fewer_rounds_but_never_too_few_for_the_rank_test():
    assert alternate.rounds_for(0.001, 20) == 20
    assert alternate.rounds_for(0.010, 20) == 10  # 0.1 s a benchmark and side
    assert alternate.rounds_for(0.057, 20) == MIN_SAMPLES == 5  # softmax's 57 ms


def test_benchmarks_too_large_to_hold_at_once_are_timed_a_group_at_a_time():
    held = {"a": 400, "b": 400, "c": 400, "d": 2000, "e": 10}
    assert alternate.groups(list(held), held, limit=1000) == [["a", "b"], ["c"], ["d"], ["e"]]
    assert alternate.groups(list(held), held, limit=10_000) == [list(held)]


def test_paired_log_ratio_interval():
    rng = np.random.default_rng(0)
    d = np.log(1.25) + rng.normal(0, 0.02, 6)
    p = paired_log_ratio(d)
    assert p["pairs"] == 6 and p["paired_low"] < 1.25 < p["paired_high"]
    assert p["paired_high"] / p["paired_low"] < 1.1  # 2 % noise over 6 pairs: a tight interval
    assert p["paired_p_slower"] < 1e-5
    assert np.isnan(paired_log_ratio([0.1])["paired_low"])  # one pair: no interval


def _sessions(rng, slow=1.0, drift=(1.0, 1.07, 0.95)):
    """3 sessions of 12 kernels, 10 rounds each; session s of both sides shares the machine's
    speed drift[s]; kernel k03 of the new side is ``slow`` times slower."""
    rows = {"base": [], "new": []}
    for s, m in enumerate(drift):
        for side in rows:
            for k in range(12):
                t = 1e-4 * (1 + k / 12) * m * (slow if side == "new" and k == 3 else 1.0)
                rows[side].append({"impl": "ours", "activation": f"k{k:02d}", "variant": "accurate",
                                   "direction": "forward", "dtype": "float32", "size": 100_000,
                                   "threads": 1, "repeat": s,
                                   "samples": rng.lognormal(np.log(t), 0.02, 10)})
    return pd.DataFrame(rows["base"]), pd.DataFrame(rows["new"])


def test_paired_ratios_pair_rounds_and_divide_out_each_sessions_drift():
    base, new = _sessions(np.random.default_rng(1), slow=1.25)
    p = against.paired(base, new).set_index("activation")
    assert (p["pairs"] == 30).all()  # 3 sessions of 10 rounds
    assert p.loc["k03", "paired_low"] < 1.25 < p.loc["k03", "paired_high"]
    assert p.loc["k03", "paired_p_slower"] < 1e-3
    others = p.drop(index="k03")
    assert others["paired_ratio"].between(0.97, 1.03).all()  # the drift is gone, noise is 2 %


class _Clock:
    """A machine whose speed jumps between 1 and 1.4 for stretches of 40 timed rounds (the
    noise measured on the 2-core machine: seconds-long stretches at two levels)."""

    def __init__(self):
        self.ticks, self.rng = 0, np.random.default_rng(3)

    def speed(self):
        self.ticks += 1
        return 1.4 if (self.ticks // 40) % 3 == 1 else 1.0


class _FakeWorker:
    """Stands in for ``alternate.Worker``: 12 kernels and the copy, k03 ``slow`` times slower
    on the new side; records every request."""

    clock, slow, log = None, 1.0, []

    def __init__(self, side, site, cwd, threads=1):
        self.side, self.answers = side, []

    def send(self, request):
        self.log.append((self.side, request))
        op = request["op"]
        if op == "setup":
            benches = [{"impl": "np.copyto", "activation": "copy", "variant": "-",
                        "direction": "-", "kind": "copy"}]
            benches += [{"impl": "ours", "activation": f"k{k:02d}", "variant": request["variant"]
                         [0] if request["variant"] else "accurate", "direction": "forward",
                         "kind": "elementwise"} for k in range(12)
                        if not request["activation"] or f"k{k:02d}" in request["activation"]]
            self.ids = [b["activation"] for b in benches]
            self.answers.append({"benchmarks": [
                {"id": i, "held_bytes": 800_000,
                 "extra_info": {**b, "dtype": "float32", "size": 100_000, "bytes": 800_000,
                                "elements": 100_000, "row_length": None, "threads": 1,
                                "max_ulp": None}} for i, b in enumerate(benches)]})
        elif op == "load":
            self.answers.append({"loaded": {str(i): {"first_call_s": 0.1, "calls_per_round": 3,
                                                     "round_s": 0.001} for i in request["ids"]}})
        elif op == "yardsticks":
            self.answers.append({"yardsticks": {str(i): [1e-5, 2e-5]
                                                for i in range(len(self.ids))}})
        else:
            name = self.ids[request["id"]]
            k = 12 if name == "copy" else int(name[1:])
            slow = self.slow if self.side == "new" and name == "k03" else 1.0
            t = 1e-4 * (1 + k / 12) * slow * self.clock.speed()
            self.answers.append({"t": float(self.clock.rng.lognormal(np.log(t), 0.02))})

    def receive(self):
        return self.answers.pop(0)

    def ask(self, request):
        self.send(request)
        return self.receive()

    def close(self, kill=False):
        pass


def _fake_gate(tmp_path, monkeypatch, slow):
    monkeypatch.setattr(_FakeWorker, "clock", _Clock())
    monkeypatch.setattr(_FakeWorker, "slow", slow)
    monkeypatch.setattr(_FakeWorker, "log", [])
    monkeypatch.setattr(alternate, "Worker", _FakeWorker)
    monkeypatch.setattr(against, "base_site", lambda *a: tmp_path / "site")
    monkeypatch.setattr("actbench_ulp.cli.gate_against._selection", lambda args: {
        "activation": None, "variant": None, "direction": None, "dtype": ["float32"],
        "size": [100_000], "row_length": 1000, "round_s": 0.001, "threads": 1})
    code, out, _ = _main("gate", "--against", "HEAD", "--only", "speed", "--interleave", "3",
                         "--out", str(tmp_path / "gate"))
    return code, out, _FakeWorker.log


def test_the_gate_alternates_the_sides_and_passes_unchanged_code(tmp_path, monkeypatch):
    code, out, log = _fake_gate(tmp_path, monkeypatch, slow=1.0)
    assert code == 0, out
    assert out.startswith("## actbench gate: PASS") and "paired ratio [95 %]" in out
    times = [side for side, r in log if r["op"] == "time"]
    # 13 benchmarks x 20 rounds x 3 sessions a side, strictly in turns of one of each, and
    # each side first in half of the turns
    assert len(times) == 2 * 13 * alternate.ROUNDS * 3
    assert all({times[i], times[i + 1]} == {"base", "new"} for i in range(0, len(times), 2))
    assert times[::2].count("base") == times[::2].count("new")
    # the yardsticks are timed after loading, one side and then the other, never at once
    ops = [r["op"] for _, r in log]
    assert ops[:6] == ["setup", "setup", "load", "load", "yardsticks", "yardsticks"]
    rs = __import__("actbench_ulp.core.resultset", fromlist=["load"]).load(tmp_path / "gate" / "base")
    assert sorted(set(rs.speed["repeat"])) == [0, 1, 2] and rs.speed_meta["repeat"] == 3
    assert (tmp_path / "gate" / "compare-speed.csv").exists()
    assert not [p for p in (tmp_path / "gate").iterdir() if p.name.startswith(".")]


def test_the_gate_against_a_revision_catches_a_slower_kernel(tmp_path, monkeypatch):
    code, out, log = _fake_gate(tmp_path, monkeypatch, slow=1.25)
    assert code == 1 and out.startswith("## actbench gate: FAIL")
    assert "k03.accurate.forward" in out.split("<details>")[0]
    speed = pd.read_csv(tmp_path / "gate" / "compare-speed.csv")
    k03 = speed[speed["activation"] == "k03"].iloc[0]
    # the machine's 1.4x stretches hit both sides alike: the ratio is the kernel's own
    assert k03["verdict"] == "slower" and k03["paired_low"] < 1.25 < k03["paired_high"]
    assert 1.15 < k03["ratio"] < 1.35
    assert k03["confirm_ratio"] > 1.15  # the rerun saw it too
    # the confirmation: a fresh pair set up for k03's activation, variant, direction and
    # dtype, timing k03 alone (not the copy benchmark it also lists)
    setups = [i for i, (_, r) in enumerate(log) if r["op"] == "setup"]
    assert len(setups) == 2 * 4 and log[setups[-1]][1]["activation"] == ["k03"]
    confirm = [r for _, r in log[setups[-1]:] if r["op"] == "time"]
    assert len(confirm) == 2 * alternate.CONFIRM_ROUNDS
    assert {r["id"] for r in confirm} == {1}  # k03, the only kernel set up after the copy


def test_a_bad_revision_is_one_clear_error(tmp_path):
    with pytest.raises(against.BaseRevisionError, match="no such revision"):
        against.resolve("no-such-branch-xyz", TOP)
    with pytest.raises(against.BaseRevisionError, match="needs a git checkout"):
        against.resolve("HEAD", tmp_path)
    code, _, err = _main("gate", "--against", "no-such-branch-xyz", "--out", str(tmp_path))
    assert code == 2 and "no-such-branch-xyz: no such revision" in err
    code, _, err = _main("gate", "--against", "HEAD", "--record", "--out", str(tmp_path))
    assert code == 2 and "--record goes with --baseline" in err
    code, _, err = _main("gate", "--against", "HEAD", "--interleave", "1", "--out", str(tmp_path))
    assert code == 2 and "at least 2" in err
    code, _, err = _main("gate", "--against", "HEAD", "--activation", "sigmoidd", "--out",
                         str(tmp_path))
    assert code == 2 and "sigmoidd" in err
    with pytest.raises(SystemExit) as exc:  # argparse: one of the two, not both
        cli.main(["gate", "--against", "HEAD", "--baseline", str(tmp_path)], out=io.StringIO(),
                 err=io.StringIO())
    assert exc.value.code == 2


def test_a_worker_that_cannot_start_is_named_with_its_reason(tmp_path):
    site = tmp_path / "site" / "actbench_ulp"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("raise ImportError('this revision is broken')\n")
    worker = alternate.Worker("base", tmp_path / "site", tmp_path)
    try:
        with pytest.raises(alternate.TimingError, match="this revision is broken") as exc:
            worker.ask({"op": "setup", "activation": ["relu"], "dtype": ["float32"],
                        "size": [1000]})
        assert exc.value.side == "base" and "the base side's timing worker" in str(exc.value)
    finally:
        worker.close()


# The throwaway commit: relu made less accurate (8 float32 ULP above 0), relu6 made slower
# (two chained square roots an element, its value unchanged: a few times the copy's time in
# the SIMD loop, far more in the scalar one), both in the accurate scalars the loops share
_BREAK = [
    ("def _s_relu(x):\n    if x > 0.0:\n        return x\n",
     "def _s_relu(x):\n    if x > 0.0:\n        return x * (1.0 + 2.0**-20)\n"),
    ("def _s_relu6(x):\n    if x != x:\n        return x\n",
     "def _s_relu6(x):\n    t = math.sqrt(math.sqrt(abs(x) + 1.0) + 1.0)\n"
     "    x = x + 0.0 * min(t, 1.0)  # +0 for every x but NaN: only the time changes\n"
     "    if x != x:\n        return x\n"),
]


def _git(args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}).stdout


def test_gate_against_the_revision_before_a_real_regression_fails_naming_both(tmp_path):
    """A temporary clone, one commit on top of HEAD that breaks two kernels for real, and
    `actbench gate --against HEAD~1` run there with that commit as the new side (its tree on
    PYTHONPATH, laid out as installed): the base is built apart, both sides are audited and
    timed in alternation, and the gate fails naming the less accurate kernel with its worst
    input and the slower one with its ratio.  The clone is left as it was."""
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=TOP, capture_output=True).returncode:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    _git(["clone", "--quiet", "--shared", str(TOP), str(clone)], tmp_path)
    accurate = clone / "kernels" / "_accurate.py"
    source = accurate.read_text()
    for before, after in _BREAK:
        assert source.count(before) == 1, before
        source = source.replace(before, after)
    accurate.write_text(source)
    _git(["commit", "--quiet", "-am", "a slower relu6 and a less accurate relu"], clone)
    site = tmp_path / "site" / "actbench_ulp"  # the new side, as an install lays it out
    shutil.copytree(clone / "bench", site, ignore=shutil.ignore_patterns("__pycache__"))
    for sub in ("kernels", "reference"):
        shutil.copytree(clone / sub, site / sub, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [sys.executable, "-m", "actbench_ulp", "gate", "--against", "HEAD~1", "--activation",
         "relu,relu6", "--dtype", "float32", "--size", "100000", "--interleave", "2",
         "--out", str(tmp_path / "gate")],
        cwd=clone, env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
        capture_output=True, text=True, timeout=600, check=False)
    out = done.stdout
    assert done.returncode == 1, out[-3000:] + done.stderr[-3000:]
    assert out.startswith("## actbench gate: FAIL")
    summary = out.split("<details>")[0]
    # the accuracy half: relu's forward, 8 to 16 ULP (x·(1 + 2**-20)), with its worst inputs
    assert re.search(r"\| relu\.accurate\.forward \| float32 \| core \| 0 \| 1[0-6] \| 1 \| "
                     r"\*\*FAIL\*\* regressed", summary), summary
    assert re.search(r"- `relu\.accurate\.forward float32 core`: `x=0x1\.[0-9a-f]+p\+\d` got "
                     r"[0-9.]+ want [0-9.]+ \(1[0-6] ulp\)", summary), summary
    # the speed half: relu6's forward, both variants, more than twice the base's time; what
    # else is slower is only what the commit changed (relu's forward gained a product)
    speed = pd.read_csv(tmp_path / "gate" / "compare-speed.csv")
    slower = speed[(speed["verdict"] == "slower") & ~speed["drift"]]  # kernels, not the drift row
    relu6 = slower[slower["activation"] == "relu6"]
    assert set(relu6["variant"]) == {"accurate", "simd"} and (relu6["ratio"] > 2).all(), speed
    assert set(slower["activation"]) <= {"relu", "relu6"} and set(slower["direction"]) == {"forward"}
    assert re.search(r"\| relu6\.simd\.forward \| float32 \| 1e5 \|.*\*\*FAIL\*\* slower", summary)
    meta = json.loads((tmp_path / "gate" / "base" / "audit.json").read_text())
    assert meta["commit"] == _git(["rev-parse", "HEAD~1"], clone).strip()
    assert _git(["status", "--porcelain"], clone) == ""
