"""``actbench gate --against REV``: the base revision built apart and both versions measured on
this machine, in this job, their timing runs interleaved.

A stored baseline only holds on the machine that recorded it (another machine of the same kind
ran its kernels 1.8-2.5x slower, and not all alike). Here nothing is stored: the base revision
is exported with ``git archive`` and installed with ``pip install --target`` into a directory
of its own under the cache (keyed by its commit, reused by the next gate against it; the
user's checkout and its git state are never touched), and each side runs in its own
processes, ``python -m actbench`` with the base's directory first on ``PYTHONPATH`` or not, so
the two versions' modules never meet. Each side keeps its own compiled-kernel cache (keyed by
its kernel sources) and both share the exact-value cache, so the accuracy half costs about
one audit more.

Timing alternates A B B A A B ... (``INTERLEAVE`` runs a side by default): each run is a fresh
process timing every benchmark for at least ``RUN_ROUNDS`` rounds and up to ``RUN_MAX_TIME``
seconds (a stored baseline's runs take 20 rounds and 0.25 s), so that a gate against a
revision takes at most twice as long as one against a stored baseline (measured: README), and a
drift of the machine or a noisy neighbour lasting minutes lands on both sides alike. The runs
of a side are then one result set of ``INTERLEAVE`` repeats, and ``compare`` judges them as it judges a stored
baseline: each run divided by its drift, the rank test, the minimum effect beyond the base's
own run-to-run spread, false-discovery control, and a confirming rerun (interleaved again).
``paired`` adds what interleaving makes possible: each benchmark's new/base ratio in every
adjacent pair of runs, their geometric mean and its 95 % interval.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from actbench.core.resultset import SPEED_KEY
from actbench.gate import stats
from actbench.gate.compare import MIN_DRIFT_BENCHMARKS

__all__ = ["CONFIRM_RUNS", "INTERLEAVE", "RUN_MAX_TIME", "RUN_ROUNDS", "BaseRevisionError",
           "base_site", "install", "merge_runs", "order", "paired", "resolve", "run_side", "stamp"]

INTERLEAVE = 3  # runs a side
# each run's sampling: a run's fixed cost (a process, ~10 s, and each benchmark's set-up) does not
# shrink with it, so N runs of 1/N of a baseline run cost more than one; measured on the 2-core
# machine, 4 runs a side at 1/4 of the rounds took 6.4 min against 2.3 for a baseline gate
RUN_ROUNDS = 5  # stats.MIN_SAMPLES: the rank test's least
RUN_MAX_TIME = 0.04
CONFIRM_RUNS = 2  # the rerun of a few flagged benchmarks: a side's runs, each mostly start-up


class BaseRevisionError(Exception):
    """The base revision cannot be found, built or run; the message says which and why."""


def _git(args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def resolve(rev: str, cwd=".") -> tuple[str, Path]:
    """(full commit hash, top of the working tree) of ``rev`` in the git checkout at ``cwd``."""
    top = _git(["rev-parse", "--show-toplevel"], cwd)
    if top.returncode != 0:
        raise BaseRevisionError(f"--against needs a git checkout: {Path(cwd).resolve()} is not "
                                "inside one")
    sha = _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd)
    if sha.returncode != 0:
        raise BaseRevisionError(f"--against {rev}: no such revision in {top.stdout.strip()} "
                                "(a branch, tag, commit or an expression like HEAD~1; in a "
                                "shallow CI clone, fetch it first)")
    return sha.stdout.strip(), Path(top.stdout.strip())


def base_site(rev: str, sha: str, top: Path, cache: Path, err) -> Path:
    """The directory holding revision ``sha`` installed as ``actbench``, under ``cache`` (built
    once per commit by ``install``)."""
    return install(rev, sha, top, cache / "gate-base" / sha, err)


def install(rev: str, sha: str, top: Path, site: Path, err, edit=None) -> Path:
    """Revision ``sha`` installed as ``actbench`` into ``site``, unless it is there already:
    ``git archive``, ``edit(source_dir)`` if given (the gate experiment's injected changes),
    then ``pip install --no-deps --target``, into a scratch directory renamed into place only
    when complete, so an interrupted build never leaves half a tree."""
    if (site / "actbench" / "__init__.py").exists():
        return site
    site.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=site.parent))
    try:
        src = scratch / "src"
        src.mkdir()
        archive = subprocess.run(["git", "archive", "--format=tar", sha], cwd=top,
                                 capture_output=True)
        if archive.returncode != 0:
            raise BaseRevisionError(f"git archive {rev} failed: {archive.stderr.decode()[-800:]}")
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
        if edit is not None:
            edit(src)
        print(f"actbench gate: building {rev} ({sha[:12]}) into {site}", file=err)
        # with build isolation, as the user's own install: the running environment's
        # setuptools may be too old to build a wheel (a fresh venv's was)
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                              "--no-compile", "--target", str(scratch / "site"), str(src)],
                             capture_output=True, text=True)
        if pip.returncode != 0 or not (scratch / "site" / "actbench").is_dir():
            raise BaseRevisionError(f"cannot install {rev} ({sha[:12]}) as actbench: "
                                    f"{(pip.stderr or pip.stdout)[-1500:]}")
        try:
            os.replace(scratch / "site", site)
        except OSError:  # another gate built it meanwhile
            if not (site / "actbench" / "__init__.py").exists():
                raise
        return site
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_side(argv: list[str], site: Path | None, label: str, err) -> int:
    """``python -m actbench ARGV`` for one side: the base with its installed tree first on
    PYTHONPATH (``site``), the new side as installed here. Its output is kept unless it fails:
    exit 0, or 1 from an audit (rows out of budget are the comparison's business)."""
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    print(f"actbench gate: {label}: actbench {' '.join(argv)}", file=err)
    proc = subprocess.run([sys.executable, "-m", "actbench", *argv], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0 and not (argv[0] == "audit" and proc.returncode == 1):
        print(f"actbench gate: {label}: actbench {argv[0]} failed (exit {proc.returncode}):\n"
              f"{(proc.stdout[-1500:] + proc.stderr[-2500:]).strip()}", file=err)
    return proc.returncode


def stamp(results: Path, rev: str, sha: str) -> None:
    """Name the base revision in its results' metadata: run from an installed tree, it knew no
    commit of its own."""
    from actbench.core.results import write_atomic

    for name in ("audit.json", "speed.json"):
        path = results / name
        if path.exists():
            meta = json.loads(path.read_text())
            meta.update(commit=sha, dirty=False, revision=rev)
            write_atomic(path, json.dumps(meta, indent=2, default=str) + "\n")


def order(runs: int) -> list[str]:
    """Which side runs when: A B B A A B B A ... (each pair's order alternates, so a steady
    drift favours neither side)."""
    return [side for r in range(runs) for side in (("base", "new") if r % 2 == 0
                                                    else ("new", "base"))]


def merge_runs(run_dirs: list[Path], out: Path) -> None:
    """The runs of one side as one result set of ``len(run_dirs)`` repeats in ``out``:
    speed-raw.json with each benchmark's ``repeat`` set to its run, speed.csv, speed.json."""
    from actbench.core.results import write_atomic
    from actbench.speed.timing import speed_table

    merged = None
    for r, d in enumerate(run_dirs):
        raw = json.loads((d / "speed-raw.json").read_text())
        for b in raw["benchmarks"]:
            b["extra_info"]["repeat"] = r
        if merged is None:
            merged = raw
        else:
            merged["benchmarks"] += raw["benchmarks"]
    meta = json.loads((run_dirs[0] / "speed.json").read_text())
    meta.update(repeat=len(run_dirs), interleaved=True,
                rounds_per_run=meta.get("rounds"), max_time_per_run=meta.get("max_time"))
    table = speed_table(merged)
    meta["rows"] = len(table)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "speed-raw.json", json.dumps(merged) + "\n")
    write_atomic(out / "speed.csv", table.to_csv(index=False))
    write_atomic(out / "speed.json", json.dumps(meta, indent=2, default=str) + "\n")


def paired(base: pd.DataFrame, new: pd.DataFrame, bound: dict | None = None,
           level: float = 0.95) -> pd.DataFrame:
    """Per benchmark of both sides, from the runs paired by ``repeat`` (adjacent in time):
    ``paired_ratio``, the geometric mean over pairs of new/base medians, each pair divided by
    that pair's drift (the median ratio of the benchmarks of its class, compute- or
    memory-bound per ``bound``, else of all); ``paired_low``/``paired_high``, its ``level``
    interval (Student's t over the pairs); ``paired_p_slower``, the one-sided p-value."""
    gb = base.groupby(SPEED_KEY, sort=False)
    gn = new.groupby(SPEED_KEY, sort=False)
    keys = [k for k in gb.groups if k in gn.groups]
    med = {}
    for k in keys:
        b = {r.repeat: float(np.median(r.samples)) for r in gb.get_group(k).itertuples()}
        n = {r.repeat: float(np.median(r.samples)) for r in gn.get_group(k).itertuples()}
        med[k] = {r: np.log(n[r] / b[r]) for r in b if r in n}
    bound = bound or {}
    drift = {}
    for k, logs in med.items():
        if k[SPEED_KEY.index("impl")] != "ours":
            continue
        for r, v in logs.items():
            drift.setdefault((bound.get(k, "all"), r), []).append(v)
    rows = []
    for k, logs in med.items():
        cls = bound.get(k, "all")
        # too few benchmarks in a class to tell its drift from one kernel's own change: none
        d = np.array([v - (float(np.median(drift[(cls, r)]))
                           if len(drift.get((cls, r), ())) >= MIN_DRIFT_BENCHMARKS else 0.0)
                      for r, v in logs.items()])
        rows.append({**dict(zip(SPEED_KEY, k, strict=True)), **stats.paired_log_ratio(d, level)})
    return pd.DataFrame(rows, columns=[*SPEED_KEY, "pairs", "paired_ratio", "paired_low",
                                       "paired_high", "paired_p_slower"])
