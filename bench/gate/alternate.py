"""Timing two versions benchmark by benchmark in alternation, for ``actbench gate --against``.

Each side is a long-lived worker process (``actbench_ulp.speed.worker``: the new side's worker
code, run under that side's ``PYTHONPATH``, so each holds only its own version's modules).
Every round, each benchmark is timed once on each side, back to back, for about 1 ms
(``ROUND_S``), base first or new first in turn. The two versions of a kernel are thus always
timed within a few milliseconds of each other.

Why not whole runs in turn: on a shared machine a kernel's speed switches between levels
(by a third, say) for stretches of seconds, so a whole run of one side (tens of seconds) can
sit in a slow stretch the other missed, and unchanged benchmarks spread between sides by more
than the slowdowns the gate must catch. Timed a millisecond apart, both sides share every
stretch. The README ("Gate a change against its base revision") gives the figures of the gate
experiment (``tools/gate_experiment.py``, a busy neighbour on the other core) for both designs.

A session is one pair of fresh workers timing ``rounds`` rounds of every benchmark; the
``sessions`` sessions (``actbench gate --interleave``, default 3; fresh processes: fresh
memory layout, fresh compile-cache load) are a side's ``repeat``s, so the base's own spread
between sessions sets the gate's threshold as a stored baseline's runs do. A worker holds
the arrays of the benchmarks it alternates over: past ``WORKER_BYTES`` (large ``--size``) it
loads and times them a group at a time. The yardsticks beside each benchmark (the copy of its
bytes, a libm loop) are timed one side at a time after loading, while the other side idles.
Each side's rounds are written as ``actbench bench`` writes them (``speed-raw.json`` in
pytest-benchmark's shape, ``speed.csv``, ``speed.json``) and judged by the same ``compare``.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from actbench_ulp.accuracy.table import KERNEL_KEY
from actbench_ulp.core.resultset import SPEED_KEY
from actbench_ulp.gate.against import side_env
from actbench_ulp.gate.stats import MIN_SAMPLES

__all__ = ["BENCHMARK_S", "CONFIRM_ROUNDS", "ROUNDS", "ROUND_S", "WORKER_BYTES",
           "TimingError", "Worker", "alternate", "first_side", "groups", "rounds_for",
           "write_side"]

ROUNDS = 20  # per benchmark, side and session, each ~1 ms ...
ROUND_S = 0.001  # ... (one call of a kernel slower than that) ...
BENCHMARK_S = 0.1  # ... and fewer where 20 would take longer, never under stats.MIN_SAMPLES
# the cap is for the row-wise kernels, tens of ms a call at the default size: 20 full rounds
# of them would take most of a session's time
CONFIRM_ROUNDS = 40  # the rerun of a few flagged benchmarks, in one fresh session
# a worker holds the arrays of the benchmarks it alternates over; above this many bytes they
# are loaded and timed a group at a time (the default selection, 1e5 elements, is one group)
WORKER_BYTES = 1 << 30
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
        n = str(threads)
        env = side_env(site, NUMBA_NUM_THREADS=n, OMP_NUM_THREADS=n, PJRT_NPROC=n)
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
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            raise TimingError(self.side, f"the {self.side} side's timing worker answered "
                                         f"{line[:200]!r}, not JSON{self._tail()}") from None
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
        try:
            code = self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # it closed its output but lives on
            self._proc.kill()
            code = self._proc.wait()
        return f"the {self.side} side's timing worker exited ({code}){self._tail()}"

    def close(self, kill: bool = False) -> None:
        """End of input: the worker exits (killed at once with ``kill``, e.g. after the other
        side failed, when an answer may be left unread; else if it does not within 30 s)."""
        if kill:
            self._proc.kill()
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
    ``BENCHMARK_S``, never under ``stats.MIN_SAMPLES`` (the rank test's least)."""
    return max(MIN_SAMPLES, min(rounds, int(BENCHMARK_S / max(round_s, 1e-9))))


def groups(keys: list, held: dict, limit: int = WORKER_BYTES) -> list[list]:
    """``keys`` in order, cut into groups whose arrays (``held[key]`` bytes) fit ``limit``
    (a benchmark larger than that alone)."""
    out, size = [], 0
    for k in keys:
        if not out or size + held[k] > limit:
            out.append([])
            size = 0
        out[-1].append(k)
        size += held[k]
    return out


def alternate(selection: dict, sites: dict, sessions: int, rounds: int, work: Path, err,
              what: str = "timing", only=None) -> dict:
    """Time ``selection`` (the workers' setup request, less ``op``) on both sides in
    alternation: ``{side: {key: [{"extra_info": ..., "samples": [...]}, one a session]}}``.
    A benchmark that one side lacks (added or removed by the change) is timed on the other
    alone, in its turn; ``only``: a set of keys (``SPEED_KEY``) to time, of those selected."""
    timed = {"base": {}, "new": {}}
    for s in range(sessions):
        print(f"actbench gate: {what}, session {s + 1} of {sessions}: {rounds} rounds a "
              "benchmark, base and new in alternation", file=err)
        workers, failed = {}, True
        try:
            for side in ("base", "new"):
                workers[side] = Worker(side, sites[side], work, selection.get("threads", 1))
            for w in workers.values():  # both at once: not timed
                w.send({"op": "setup", **selection})
            described = {side: {_key(b["extra_info"]): b for b in w.receive()["benchmarks"]}
                         for side, w in workers.items()}
            keys = [k for k in dict.fromkeys([*described["base"], *described["new"]])
                    if only is None or k in only]
            held = {k: max(d[k]["held_bytes"] for d in described.values() if k in d) for k in keys}
            for group in groups(keys, held):
                _time_group(group, workers, described, rounds, s, timed)
            failed = False
        finally:
            for w in workers.values():
                w.close(kill=failed)
    return timed


def _time_group(keys, workers, described, rounds, session, timed) -> None:
    """Load ``keys`` on both sides (at once: not timed), time the yardsticks beside them (one
    side at a time, the other idle), then the rounds, in alternation."""
    ids = {side: {k: described[side][k]["id"] for k in keys if k in described[side]}
           for side in workers}
    for side, w in workers.items():
        w.send({"op": "load", "ids": list(ids[side].values())})
    loaded = {side: w.receive()["loaded"] for side, w in workers.items()}
    yard = {side: w.ask({"op": "yardsticks"})["yardsticks"] for side, w in workers.items()}
    samples = {side: {k: [] for k in ids[side]} for side in workers}
    # both sides the same number: the longer of their rounds decides
    wanted = {k: rounds_for(max(loaded[side][str(ids[side][k])]["round_s"]
                                for side in workers if k in ids[side]), rounds) for k in keys}
    for r in range(rounds):
        for i, k in enumerate(keys):
            if r >= wanted[k]:
                continue
            first = first_side(r, i, session)
            for side in (first, "new" if first == "base" else "base"):
                if k in ids[side]:
                    samples[side][k].append(workers[side].ask({"op": "time",
                                                               "id": ids[side][k]})["t"])
    for side in workers:
        for k, i in ids[side].items():
            copy_s, cpu_s = yard[side][str(i)]
            got = loaded[side][str(i)]
            info = {**described[side][k]["extra_info"], "first_call_s": got["first_call_s"],
                    "calls_per_round": got["calls_per_round"], "copy_s": copy_s, "cpu_s": cpu_s}
            timed[side].setdefault(k, []).append({"extra_info": info, "samples": samples[side][k]})


def _stats(data: list[float]) -> dict:
    q1, median, q3 = np.percentile(data, [25, 50, 75])
    return {"min": min(data), "max": max(data), "mean": float(np.mean(data)),
            "median": float(median), "iqr": float(q3 - q1), "rounds": len(data), "data": data}


def write_side(timed: dict, out: Path, meta: dict, max_ulps: dict | None = None) -> None:
    """One side's alternated rounds as ``actbench bench`` writes a run of ``len(sessions)``
    repeats into ``out``: speed-raw.json (pytest-benchmark's shape, one entry per benchmark
    and session), speed.csv and speed.json (``meta`` added to the run metadata)."""
    from actbench_ulp.core.results import write_atomic, write_table
    from actbench_ulp.speed.timing import speed_table

    benchmarks = []
    for sessions in timed.values():
        for session, entry in enumerate(sessions):
            info = entry["extra_info"]
            extra = {**info, "repeat": session}
            if info["impl"] == "ours":
                extra["max_ulp"] = (max_ulps or {}).get(tuple(info[k] for k in KERNEL_KEY))
            # 6 significant digits, as actbench bench keeps them
            data = [float(f"{v:.6g}") for v in entry["samples"]]
            benchmarks.append({
                "name": f"{info['impl']}-{info['activation']}.{info['variant']}."
                        f"{info['direction']}-{info['dtype']}-{info['size']}",
                "stats": _stats(data), "extra_info": extra})
    raw = {"benchmarks": benchmarks}
    table = speed_table(raw)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "speed-raw.json", json.dumps(raw) + "\n")
    write_table(table, out, "speed", raw="speed-raw.json", **meta)
