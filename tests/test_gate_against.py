"""`actbench gate --against REV`: who goes first, each benchmark's rounds, the paired ratio and
its interval, a side's rounds written as `actbench bench` writes them, bad revisions and
failing workers; the whole gate with faked workers under a machine whose speed jumps for
stretches (unchanged code passes, a 25 % slower kernel fails by name and is confirmed); and one
real gate of this checkout against its own HEAD (one kernel, both halves)."""

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actbench import cli
from actbench.gate import against, alternate
from actbench.gate.stats import MIN_SAMPLES, paired_log_ratio

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
    monkeypatch.setattr("actbench.cli.gate_against._selection", lambda args: {
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
    rs = __import__("actbench.core.resultset", fromlist=["load"]).load(tmp_path / "gate" / "base")
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
    site = tmp_path / "site" / "actbench"
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


def test_gate_against_head_builds_and_runs_the_base_apart(tmp_path):
    # the real thing on one small kernel: HEAD exported and installed apart, both sides
    # audited and timed by real workers in alternation; the kernels did not change, so it
    # passes, and the user's checkout is left as it was
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=TOP, capture_output=True).returncode:
        pytest.skip("not a git checkout")
    status = subprocess.run(["git", "status", "--porcelain"], cwd=TOP, capture_output=True,
                            text=True).stdout
    code, out, err = _main("gate", "--against", "HEAD", "--activation", "relu", "--dtype",
                           "float32", "--size", "10000", "--interleave", "2", "--out",
                           str(tmp_path / "gate"))
    assert code == 0, out + err
    assert out.startswith("## actbench gate: PASS")
    assert "built apart and measured on this machine" in out
    meta = json.loads((tmp_path / "gate" / "base" / "audit.json").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=TOP, capture_output=True,
                          text=True).stdout.strip()
    assert meta["commit"] == head and meta["revision"] == "HEAD"
    assert "accuracy, base" in err and "accuracy, new" in err and "session 2 of 2" in err
    speed = pd.read_csv(tmp_path / "gate" / "compare-speed.csv")
    relu = speed[speed["activation"] == "relu"]
    # every relu variant and direction of float32, timed on both sides in both sessions
    assert len(relu) >= 2 and (relu["base_runs"] == 2).all() and (relu["new_runs"] == 2).all()
    assert relu["max_ulp"].notna().all()  # the new side's audit beside its timing
    assert subprocess.run(["git", "status", "--porcelain"], cwd=TOP, capture_output=True,
                          text=True).stdout == status
