"""`actbench gate --against REV`: the interleaving order, the per-run command lines, merging a
side's runs, the paired ratio and its interval, bad revisions; and one real gate of this
checkout against its own HEAD (one kernel, two runs a side)."""

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actbench import cli
from actbench.gate import against, runs
from actbench.gate.stats import paired_log_ratio

TOP = Path(__file__).resolve().parents[1]


def _main(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_runs_alternate_so_a_steady_drift_favours_neither_side():
    assert against.order(4) == ["base", "new", "new", "base", "base", "new", "new", "base"]
    seq = against.order(4)
    # a drift growing linearly with time: both sides' mean position is the same
    assert np.mean([i for i, s in enumerate(seq) if s == "base"]) == \
        np.mean([i for i, s in enumerate(seq) if s == "new"])


def test_each_run_is_one_repeat_of_its_own_rounds():
    bench = ["bench", "--out", "x", "--activation", "sigmoid", "--rounds", "20", "--max-time",
             "0.25", "--repeat", "5", "--audit", "x/audit.csv"]
    argv = runs.interleaved_argv(bench, Path("run0"), Path("base/audit.csv"),
                                 against.RUN_ROUNDS, against.RUN_MAX_TIME)
    assert argv.count("--rounds") == argv.count("--max-time") == argv.count("--out") == 1
    assert argv[argv.index("--rounds") + 1] == "5"  # the rank test's least a side and run
    assert float(argv[argv.index("--max-time") + 1]) == pytest.approx(0.04)
    assert argv[argv.index("--repeat") + 1] == "1"
    assert argv[argv.index("--audit") + 1] == "base/audit.csv"
    assert argv[argv.index("--activation") + 1] == "sigmoid"


def test_paired_log_ratio_interval():
    rng = np.random.default_rng(0)
    d = np.log(1.25) + rng.normal(0, 0.02, 6)
    p = paired_log_ratio(d)
    assert p["pairs"] == 6 and p["paired_low"] < 1.25 < p["paired_high"]
    assert p["paired_high"] / p["paired_low"] < 1.1  # 2 % noise over 6 pairs: a tight interval
    assert p["paired_p_slower"] < 1e-5
    assert np.isnan(paired_log_ratio([0.1])["paired_low"])  # one pair: no interval


def _runs(rng, slow=1.0, drift=(1.0, 1.07, 0.95, 1.02)):
    """Interleaved runs of 12 kernels; run r of both sides shares the machine's speed
    drift[r]; kernel k03 of the new side is ``slow`` times slower."""
    rows = {"base": [], "new": []}
    for r, m in enumerate(drift):
        for side in rows:
            for k in range(12):
                t = 1e-4 * (1 + k / 12) * m * (slow if side == "new" and k == 3 else 1.0)
                rows[side].append({"impl": "ours", "activation": f"k{k:02d}", "variant": "accurate",
                                   "direction": "forward", "dtype": "float32", "size": 100_000,
                                   "threads": 1, "repeat": r,
                                   "samples": rng.lognormal(np.log(t), 0.02, 10)})
    return pd.DataFrame(rows["base"]), pd.DataFrame(rows["new"])


def test_paired_ratios_divide_out_the_pairs_drift():
    base, new = _runs(np.random.default_rng(1), slow=1.25)
    p = against.paired(base, new).set_index("activation")
    assert p.loc["k03", "paired_low"] < 1.25 < p.loc["k03", "paired_high"]
    assert p.loc["k03", "paired_p_slower"] < 1e-3
    others = p.drop(index="k03")
    assert others["paired_ratio"].between(0.97, 1.03).all()  # the drift is gone, noise is 2 %


def test_merged_runs_are_one_result_set_of_repeats(tmp_path):
    from actbench.core.resultset import load

    dirs = []
    for r in range(3):
        d = tmp_path / f"run{r}"
        d.mkdir()
        bench = {"name": "test_kernel[ours-sigmoid]",
                 "extra_info": {"impl": "ours", "activation": "sigmoid", "variant": "accurate",
                                "direction": "forward", "kind": "elementwise", "dtype": "float32",
                                "size": 1000, "bytes": 8000, "threads": 1, "max_ulp": 0.5,
                                "repeat": 0, "copy_s": 1e-6, "cpu_s": 2e-6, "first_call_s": 0.1},
                 "stats": {"data": [1e-5 * (1 + r), 1.1e-5 * (1 + r)], "median": 1.05e-5 * (1 + r),
                           "iqr": 1e-6, "rounds": 2}}
        (d / "speed-raw.json").write_text(json.dumps({"benchmarks": [bench]}))
        (d / "speed.json").write_text(json.dumps({"schema_version": 1, "rounds": 5,
                                                  "max_time": 0.0625, "threads": 1}))
        dirs.append(d)
    against.merge_runs(dirs, tmp_path / "merged")
    rs = load(tmp_path / "merged")
    assert sorted(rs.speed["repeat"]) == [0, 1, 2]
    assert rs.speed_meta["repeat"] == 3 and rs.speed_meta["interleaved"] is True


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
    with pytest.raises(SystemExit) as exc:  # argparse: one of the two, not both
        cli.main(["gate", "--against", "HEAD", "--baseline", str(tmp_path)], out=io.StringIO(),
                 err=io.StringIO())
    assert exc.value.code == 2


class _FakeSides:
    """Stands in for ``against.run_side``: records the order of the runs, and writes a timing
    run of 12 kernels (one ``slow`` times slower on the new side) instead of timing."""

    def __init__(self, slow=1.0):
        self.calls, self.slow, self.rng = [], slow, np.random.default_rng(3)

    def __call__(self, argv, site, label, err):
        side = "base" if site is not None else "new"
        self.calls.append((argv[0], side, argv))
        out = Path(argv[argv.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        if argv[0] == "audit":
            return 0  # no audit.csv: this fake gates speed only
        acts = argv[argv.index("--activation") + 1].split(",")
        machine = self.rng.uniform(0.9, 1.1)  # this run's machine speed, both sides alike
        benches = [self._bench("np.copyto", "copy", 1e-5 * machine)]
        for k in range(12):
            name = f"k{k:02d}"
            if name in acts or "--activation" not in argv:
                slow = self.slow if side == "new" and k == 3 else 1.0
                benches.append(self._bench("ours", name, 1e-4 * (1 + k / 12) * machine * slow))
        (out / "speed-raw.json").write_text(json.dumps({"benchmarks": benches}))
        (out / "speed.json").write_text(json.dumps({"schema_version": 1, "rounds": 5,
                                                    "max_time": 0.0625, "threads": 1}))
        return 0

    def _bench(self, impl, name, t):
        data = list(self.rng.lognormal(np.log(t), 0.02, 10))
        return {"name": f"test_kernel[{impl}-{name}]",
                "extra_info": {"impl": impl, "activation": name, "variant": "accurate",
                               "direction": "forward", "kind": "elementwise", "dtype": "float32",
                               "size": 100_000, "bytes": 800_000, "threads": 1, "max_ulp": 0.5,
                               "copy_s": 1e-5, "cpu_s": 2e-5, "first_call_s": 0.1},
                "stats": {"data": data, "median": float(np.median(data)), "iqr": 1e-7,
                          "rounds": 10}}


def _fake_gate(tmp_path, monkeypatch, slow):
    fake = _FakeSides(slow)
    monkeypatch.setattr(against, "run_side", fake)
    monkeypatch.setattr(against, "base_site", lambda *a: tmp_path / "site")
    acts = ",".join(f"k{k:02d}" for k in range(12))
    monkeypatch.setattr(runs, "record_argvs", lambda out, *a, **k: (
        ["audit", "--out", str(out)], ["bench", "--out", str(out), "--activation", acts]))
    code, out, _ = _main("gate", "--against", "HEAD", "--interleave", "4", "--out",
                           str(tmp_path / "gate"))
    return code, out, fake.calls


def test_the_gate_interleaves_the_sides_and_passes_unchanged_code(tmp_path, monkeypatch):
    code, out, calls = _fake_gate(tmp_path, monkeypatch, slow=1.0)
    assert code == 0, out
    assert out.startswith("## actbench gate: PASS") and "paired ratio [95 %]" in out
    assert [side for kind, side, _ in calls if kind == "audit"] == ["base", "new"]
    assert [side for kind, side, _ in calls if kind == "bench"] == against.order(4)
    assert (tmp_path / "gate" / "base" / "speed-raw.json").exists()
    assert (tmp_path / "gate" / "compare-speed.csv").exists()
    assert not [p for p in (tmp_path / "gate").iterdir() if p.name.startswith(".")]


def test_the_gate_against_a_revision_catches_a_slower_kernel(tmp_path, monkeypatch):
    code, out, calls = _fake_gate(tmp_path, monkeypatch, slow=1.25)
    assert code == 1 and out.startswith("## actbench gate: FAIL")
    assert "k03.accurate.forward" in out.split("<details>")[0]
    speed = pd.read_csv(tmp_path / "gate" / "compare-speed.csv")
    k03 = speed[speed["activation"] == "k03"].iloc[0]
    assert k03["verdict"] == "slower" and k03["paired_low"] < 1.25 < k03["paired_high"]
    assert k03["confirm_ratio"] > 1.15  # the interleaved rerun saw it too
    # the confirmation reran only k03, both sides, interleaved
    confirm = [(side, argv) for kind, side, argv in calls if kind == "bench"][8:]
    assert [side for side, _ in confirm] == against.order(against.CONFIRM_RUNS)
    assert all(argv[argv.index("--activation") + 1] == "k03" for _, argv in confirm)


def test_gate_against_head_builds_and_runs_the_base_apart(tmp_path):
    # the real thing, accuracy only (the timing runs are the same mechanism, each a process
    # of ~10 s): HEAD exported and installed apart, both sides audited; the kernels did not
    # change, so it passes, and the user's checkout is left as it was
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=TOP, capture_output=True).returncode:
        pytest.skip("not a git checkout")
    status = subprocess.run(["git", "status", "--porcelain"], cwd=TOP, capture_output=True,
                            text=True).stdout
    code, out, err = _main("gate", "--against", "HEAD", "--only", "accuracy", "--activation",
                           "relu", "--dtype", "float32", "--out", str(tmp_path / "gate"))
    assert code == 0, out + err
    assert out.startswith("## actbench gate: PASS")
    assert "built apart and measured on this machine" in out
    meta = json.loads((tmp_path / "gate" / "base" / "audit.json").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=TOP, capture_output=True,
                          text=True).stdout.strip()
    assert meta["commit"] == head and meta["revision"] == "HEAD"
    assert "accuracy, base" in err and "accuracy, new" in err
    assert subprocess.run(["git", "status", "--porcelain"], cwd=TOP, capture_output=True,
                          text=True).stdout == status
