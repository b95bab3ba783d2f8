"""Timing two versions benchmark by benchmark in alternation, for ``actbench gate --against``.

Each side is a long-lived worker process (``actbench.speed.worker``: the new side's worker
code, run under that side's ``PYTHONPATH``, so each holds only its own version's modules).
Every round, each benchmark is timed once on each side, back to back, for about 1 ms
(``ROUND_S``), base first or new first in turn. The two versions of a kernel are thus always
timed within a few milliseconds of each other.

Why not whole runs in turn: on this project's shared 2-core machine a kernel's speed switches
between levels (softplus 22 or 32 ns/element) for stretches of seconds. Whole runs of one side
(~20 s each) landed in a slow stretch, and unchanged benchmarks spread 0.65-1.52 (p1-p99)
between sides: the rank test caught 1 of 4 injected 25 % slowdowns. Alternating each
benchmark every millisecond, in a prototype with a busy neighbour on the other core, kept
unchanged benchmarks within 0.875-1.244 and caught 8 of 8 (README, "Gate a change against its
base revision").

A session is one pair of fresh workers timing ``rounds`` rounds; ``sessions`` sessions
(each a fresh pair of processes: fresh memory layout, fresh compile-cache load) are a side's
``repeat``s, so the base's own spread between sessions sets the gate's threshold as a stored
baseline's runs do. Each side's rounds are written as ``actbench bench`` writes them
(``speed-raw.json`` in pytest-benchmark's shape, ``speed.csv``, ``speed.json``) and judged
by the same ``compare``.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from actbench.core.resultset import SPEED_KEY

__all__ = ["BENCHMARK_S", "CONFIRM_ROUNDS", "MIN_ROUNDS", "ROUNDS", "ROUND_S", "SESSIONS",
           "TimingError", "Worker", "alternate", "first_side", "rounds_for", "write_side"]

SESSIONS = 3  # fresh worker pairs: the repeats whose spread sets the threshold
ROUNDS = 20  # per benchmark, side and session, each ~1 ms ...
ROUND_S = 0.001  # ... (one call of a kernel slower than that) ...
BENCHMARK_S = 0.1  # ... and fewer where a round is long, down to
MIN_ROUNDS = 5  # stats.MIN_SAMPLES: the rank test's least
# measured on the 2-core machine (all 236 benchmarks): a process takes ~10 s to load every
# kernel and warm it, both sides at once; a round of all of them ~1.7 s, of which the 11
# row-wise kernels at 55-60 ms a call took two thirds before BENCHMARK_S capped them
CONFIRM_ROUNDS = 40  # the rerun of a few flagged benchmarks, in one fresh session
WORKER = Path(__file__).resolve().parents[1] / "speed" / "worker.py"


class TimingError(Exception):
    """A worker failed; the message names the side (``side``) and says why."""

    def __init__(self, side: str, message: str):
        super().__init__(message)
        self.side = side


class Worker:
    """One side's worker process: ``site`` first on its PYTHONPATH (None: as installed
    here), one thread for Numba and OpenMP as ``actbench bench`` pins them."""

    def __init__(self, side: str, site: Path | None, cwd: Path, threads: int = 1):
        self.side = side
        env = {**os.environ, "NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
        if site is not None:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
        self._stderr = tempfile.TemporaryFile(mode="w+", dir=cwd)
        self._proc = subprocess.Popen([sys.executable, "-c", WORKER.read_text()], env=env,
                                      cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, text=True, bufsize=1)

    def send(self, request: dict) -> None:
        try:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise TimingError(self.side, self._died()) from None

    def receive(self) -> dict:
        line = self._proc.stdout.readline()
        if not line:
            raise TimingError(self.side, self._died())
        answer = json.loads(line)
        if "error" in answer:
            raise TimingError(self.side, f"the {self.side} side's timing worker failed: {answer['error']}"
                              f"{self._tail()}")
        return answer

    def ask(self, request: dict) -> dict:
        self.send(request)
        return self.receive()

    def _tail(self) -> str:
        self._stderr.seek(0)
        tail = self._stderr.read()[-1500:].strip()
        return f"\n{tail}" if tail else ""

    def _died(self) -> str:
        code = self._proc.wait(timeout=30)
        return f"the {self.side} side's timing worker exited ({code}){self._tail()}"

    def close(self) -> None:
        """End of input: the worker exits (killed if it does not within 30 s)."""
        try:
            self._proc.stdin.close()
        except OSError:  # it died: the pipe is broken
            pass
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()
        self._stderr.close()


def _key(info: dict) -> tuple:
    return tuple(info[k] for k in SPEED_KEY)


def first_side(round_: int, index: int, session: int) -> str:
    """Who goes first for one benchmark in one round: alternating from round to round, from
    benchmark to benchmark and from session to session, so a steady drift favours neither."""
    return "base" if (round_ + index + session) % 2 == 0 else "new"


def rounds_for(round_s: float, rounds: int) -> int:
    """A benchmark's rounds in a session: ``rounds``, fewer where they would take over
    ``BENCHMARK_S``, never under ``MIN_ROUNDS``."""
    return max(MIN_ROUNDS, min(rounds, int(BENCHMARK_S / max(round_s, 1e-9))))


def alternate(selection: dict, sites: dict, sessions: int, rounds: int, work: Path, err,
              what: str = "timing", only=None) -> dict:
    """Time ``selection`` (the worker's setup request, less ``op``) on both sides in
    alternation: ``{side: {key: {"extra_info": ..., "samples": [[session's rounds], ...]}}}``.
    A benchmark that one side lacks (added or removed by the change) is timed on the other
    alone, in its turn; ``only``: a set of keys (``SPEED_KEY``) to time, of those selected."""
    timed = {"base": {}, "new": {}}
    for s in range(sessions):
        print(f"actbench gate: {what}, session {s + 1} of {sessions}: {rounds} rounds a "
              "benchmark, base and new in alternation", file=err)
        workers = {side: Worker(side, sites[side], work) for side in ("base", "new")}
        try:
            for w in workers.values():  # both set up at once: not timed
                w.send({"op": "setup", **selection})
            described = {side: {_key(b["extra_info"]): b for b in w.receive()["benchmarks"]}
                         for side, w in workers.items()}
            keys = [k for k in dict.fromkeys([*described["base"], *described["new"]])
                    if only is None or k in only]
            samples = {side: {k: [] for k in described[side] if k in keys} for side in workers}
            # both sides the same number: the longer of their rounds decides
            wanted = {k: rounds_for(max(d[k]["round_s"] for d in described.values() if k in d),
                                    rounds) for k in keys}
            for r in range(rounds):
                for i, k in enumerate(keys):
                    if r >= wanted[k]:
                        continue
                    first = first_side(r, i, s)
                    for side in (first, "new" if first == "base" else "base"):
                        if k in described[side]:
                            t = workers[side].ask({"op": "time", "id": described[side][k]["id"]})
                            samples[side][k].append(t["t"])
        finally:
            for w in workers.values():
                w.close()
        for side in workers:
            for k in samples[side]:
                b = described[side][k]
                entry = timed[side].setdefault(k, {"extra_info": b["extra_info"], "samples": []})
                entry["samples"].append(samples[side][k])
    return timed


def _stats(data: list[float]) -> dict:
    q1, median, q3 = np.percentile(data, [25, 50, 75])
    return {"min": min(data), "max": max(data), "mean": float(np.mean(data)),
            "median": float(median), "iqr": float(q3 - q1), "rounds": len(data), "data": data}


def write_side(timed: dict, out: Path, meta: dict, max_ulps: dict | None = None) -> None:
    """One side's alternated rounds as ``actbench bench`` writes a run of ``len(sessions)``
    repeats into ``out``: speed-raw.json (pytest-benchmark's shape, one entry per benchmark
    and session), speed.csv and speed.json (``meta`` added to the run metadata)."""
    from actbench.core.results import write_atomic, write_table
    from actbench.speed.timing import speed_table

    benchmarks = []
    for entry in timed.values():
        info = entry["extra_info"]
        ulp_key = (info["impl"], info["activation"], info["variant"], info["direction"],
                   info["dtype"])
        for session, data in enumerate(entry["samples"]):
            # 6 significant digits, as actbench bench keeps them
            data = [float(f"{v:.6g}") for v in data]
            extra = {**info, "repeat": session}
            if info["impl"] == "ours":
                extra["max_ulp"] = (max_ulps or {}).get(ulp_key)
            benchmarks.append({
                "name": f"{info['impl']}-{info['activation']}.{info['variant']}."
                        f"{info['direction']}-{info['dtype']}-{info['size']}",
                "stats": _stats(data), "extra_info": extra})
    raw = {"benchmarks": benchmarks}
    table = speed_table(raw)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "speed-raw.json", json.dumps(raw) + "\n")
    write_table(table, out, "speed", raw="speed-raw.json", **meta)
