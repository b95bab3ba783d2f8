"""``actbench gate --against REV``: the base revision built apart and both versions measured on
this machine, in this job, their kernels timed in alternation.

A stored baseline only holds on the machine that recorded it (two machines of the same kind can
run the kernels at speeds a factor of two apart, and not the same factor for every kernel).
Here nothing is stored: the base revision is exported with ``git archive`` and installed with
``pip install --target`` into a directory of its own under the cache (keyed by its commit,
reused by the next gate against it; the user's checkout and its git state are never touched),
and each side runs in its own processes, ``python -m actbench_ulp`` with the base's directory
first on ``PYTHONPATH`` or not, so the two versions' modules never meet. Each side keeps its
own compiled-kernel cache (keyed by its kernel sources) and both share the exact-value cache,
so the accuracy half costs about one audit more.

Timing is ``actbench_ulp.gate.alternate``: both versions held by worker processes and timed
benchmark by benchmark in alternation, base and new within milliseconds of each other, in
``SESSIONS`` fresh pairs of processes. Each side's rounds are one result set of that many
repeats, and ``compare`` judges them as it judges a stored baseline: each session divided by
its drift, the rank test, the minimum effect beyond the base's own session-to-session spread,
false-discovery control, and a confirming rerun (a fresh pair, alternating again).
``paired`` adds what alternation makes possible: each benchmark's new/base ratio round by
round (the two timed back to back), their geometric mean and its 95 % interval.
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

from actbench_ulp.core.resultset import SPEED_KEY
from actbench_ulp.gate import stats
from actbench_ulp.gate.compare import MIN_DRIFT_BENCHMARKS

__all__ = ["BaseRevisionError", "base_site", "install", "paired", "resolve", "run_side", "side_env",
           "stamp"]

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


# the import package of a revision: actbench_ulp, or actbench before the rename (PyPI's
# "actbench" is another project's import name), so that a gate can take an older base
PACKAGES = ("actbench_ulp", "actbench")


def package_in(site: Path | None) -> str:
    """The import package installed in ``site`` (this one's for None)."""
    for name in PACKAGES if site is not None else ():
        if (site / name / "__init__.py").exists():
            return name
    return PACKAGES[0]


def _installed(site: Path) -> bool:
    return any((site / name / "__init__.py").exists() for name in PACKAGES)


def base_site(rev: str, sha: str, top: Path, cache: Path, err) -> Path:
    """The directory holding revision ``sha`` installed, under ``cache`` (built once per
    commit by ``install``)."""
    return install(rev, sha, top, cache / "gate-base" / sha, err)


def install(rev: str, sha: str, top: Path, site: Path, err, edit=None) -> Path:
    """Revision ``sha`` installed into ``site``, unless it is there already:
    ``git archive``, ``edit(source_dir)`` if given (tools/gate_experiment.py's injected changes),
    then ``pip install --no-deps --target``, into a scratch directory renamed into place only
    when complete, so an interrupted build never leaves half a tree."""
    if _installed(site):
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
        # setuptools may be too old to build a wheel (a fresh venv's can be)
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                              "--no-compile", "--target", str(scratch / "site"), str(src)],
                             capture_output=True, text=True)
        if pip.returncode != 0 or not _installed(scratch / "site"):
            raise BaseRevisionError(f"cannot install {rev} ({sha[:12]}): "
                                    f"{(pip.stderr or pip.stdout)[-1500:]}")
        try:
            os.replace(scratch / "site", site)
        except OSError:  # another gate built it meanwhile
            if not _installed(site):
                raise
        return site
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def side_env(site: Path | None, **extra: str) -> dict:
    """The environment of one side's processes: ``site`` (the base's installed tree) first on
    PYTHONPATH, or this one as installed (None); ``extra`` variables set."""
    env = {**os.environ, **extra}
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    return env


def run_side(argv: list[str], site: Path | None, label: str, err) -> int:
    """``python -m PACKAGE ARGV`` for one side: the base with its installed tree first on
    PYTHONPATH (``site``), the new side as installed here. Its output is kept unless it fails:
    exit 0, or 1 from an audit (rows out of budget are the comparison's business)."""
    env = side_env(site)
    print(f"actbench gate: {label}: actbench {' '.join(argv)}", file=err)
    proc = subprocess.run([sys.executable, "-m", package_in(site), *argv], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0 and not (argv[0] == "audit" and proc.returncode == 1):
        print(f"actbench gate: {label}: actbench {argv[0]} failed (exit {proc.returncode}):\n"
              f"{(proc.stdout[-1500:] + proc.stderr[-2500:]).strip()}", file=err)
    return proc.returncode


def stamp(results: Path, rev: str, sha: str) -> None:
    """Name the base revision in its results' metadata: run from an installed tree, it knew no
    commit of its own."""
    from actbench_ulp.core.results import write_atomic

    for name in ("audit.json", "speed.json"):
        path = results / name
        if path.exists():
            meta = json.loads(path.read_text())
            meta.update(commit=sha, dirty=False, revision=rev)
            write_atomic(path, json.dumps(meta, indent=2, default=str) + "\n")


def paired(base: pd.DataFrame, new: pd.DataFrame, bound: dict | None = None,
           level: float = 0.95) -> pd.DataFrame:
    """Per benchmark of both sides, from rounds paired in time (round i of a session on one
    side with round i on the other, timed back to back): ``paired_ratio``, the geometric mean
    over all pairs of new/base, each divided by its session's drift (the median paired ratio
    of the benchmarks of its class, compute- or memory-bound per ``bound``, else of all, in
    that session); ``paired_low``/``paired_high``, its ``level`` interval (Student's t over
    the pairs, which treats rounds as independent, as the rank test does); and
    ``paired_p_slower``, the one-sided p-value."""
    gb = base.groupby(SPEED_KEY, sort=False)
    gn = new.groupby(SPEED_KEY, sort=False)
    logs = {}
    for k in (k for k in gb.groups if k in gn.groups):
        b = {r.repeat: r.samples for r in gb.get_group(k).itertuples()}
        n = {r.repeat: r.samples for r in gn.get_group(k).itertuples()}
        logs[k] = {s: np.log(n[s][:m] / b[s][:m])
                   for s in b if s in n for m in [min(len(b[s]), len(n[s]))]}
    bound = bound or {}
    drift = {}
    for k, by_session in logs.items():
        if k[SPEED_KEY.index("impl")] != "ours":
            continue
        for s, d in by_session.items():
            drift.setdefault((bound.get(k, "all"), s), []).append(float(np.median(d)))
    rows = []
    for k, by_session in logs.items():
        cls = bound.get(k, "all")
        # too few benchmarks in a class to tell its drift from one kernel's own change: none
        d = np.concatenate([v - (float(np.median(drift[(cls, s)]))
                                 if len(drift.get((cls, s), ())) >= MIN_DRIFT_BENCHMARKS else 0.0)
                            for s, v in by_session.items()] or [np.array([])])
        rows.append({**dict(zip(SPEED_KEY, k, strict=True)), **stats.paired_log_ratio(d, level)})
    return pd.DataFrame(rows, columns=[*SPEED_KEY, "pairs", "paired_ratio", "paired_low",
                                       "paired_high", "paired_p_slower"])
