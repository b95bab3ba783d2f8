"""`actbench compare` / `gate` logic on synthetic result sets: accuracy verdicts, speed
verdicts under drift and a real slowdown, exit codes, the Markdown summary. No timing is
measured here."""

import io
import json

import numpy as np
import pandas as pd
import pytest

from actbench_ulp import cli
from actbench_ulp.accuracy.row import COLUMNS
from actbench_ulp.cli import gating
from actbench_ulp.core import catalog
from actbench_ulp.core.results import write_atomic, write_table
from actbench_ulp.core.resultset import ResultsError, load
from actbench_ulp.gate import runs as gate
from actbench_ulp.gate import summary
from actbench_ulp.gate.compare import compare, compare_accuracy, compare_speed, confirm, yardstick

# ---------------------------------------------------------------- synthetic result sets


def _row(activation="sigmoid", dtype="float32", domain="core", max_ulp=0.5, budget=1.0,
         mismatches=0, impl="ours", status=None, error=""):
    status = status or ("failed" if mismatches or max_ulp > budget else "ok")
    pts = [{"x": "0x1.8p+4", "got": "0.99", "want": "0.98", "ulp": max_ulp, "kind": "ulp"}]
    row = dict.fromkeys(COLUMNS, "")
    row.update(activation=activation, variant="accurate", direction="forward", dtype=dtype,
               domain=domain, n=100, max_ulp=max_ulp, special_mismatches=mismatches,
               budget_max_ulp=budget, passed=status == "ok", impl=impl, status=status,
               error=error, worst_points=json.dumps(pts))
    return row


def _audit(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def _write_audit(path, rows, **meta):
    write_table(_audit(rows), path, "audit", profile="quick", filters={}, impls=["ours"], **meta)


def _bench(activation, samples, impl="ours", dtype="float32", size=100_000, copy_s=1e-5,
           cpu_s=2e-5):
    return {"name": f"test_kernel[{impl}-{activation}]",
            "extra_info": {"impl": impl, "activation": activation,
                           "variant": "accurate" if impl == "ours" else "-",
                           "direction": "forward", "kind": "elementwise", "dtype": dtype,
                           "size": size, "bytes": 8 * size, "threads": 1, "max_ulp": 0.5,
                           "copy_s": copy_s, "cpu_s": cpu_s},
            "stats": {"data": list(map(float, samples))}}


def _speed(rng, scale=None, cpu=1.0, mem=1.0, n=30, kernels=40, sd=0.03, repeat=0):
    """A run of ``kernels`` compute-bound kernels (10× the copy) and one memory-bound one;
    ``cpu``/``mem`` scale the machine's compute/memory speed for the whole run, ``scale``
    slows single kernels down."""
    scale = scale or {}
    benches = [_bench("copy", rng.lognormal(np.log(1e-5 * mem), sd, n), impl="np.copyto")]
    for k in range(kernels):
        name = f"k{k:02d}"
        t = 1e-4 * (1 + k / kernels) * cpu * scale.get(name, 1.0)
        benches.append(_bench(name, rng.lognormal(np.log(t), sd, n), copy_s=1e-5 * mem,
                              cpu_s=2e-5 * cpu))
    t = 1.2e-5 * mem * scale.get("memcpyish", 1.0)
    benches.append(_bench("memcpyish", rng.lognormal(np.log(t), sd, n), copy_s=1e-5 * mem,
                          cpu_s=2e-5 * cpu))
    return pd.DataFrame([{**b["extra_info"], "repeat": repeat,
                          "samples": np.array(b["stats"]["data"])} for b in benches])


# ---------------------------------------------------------------- accuracy


def test_accuracy_same_results_pass():
    rows = [_row(), _row(dtype="float64", max_ulp=2.0, budget=3.0)]
    c = compare_accuracy(_audit(rows), _audit(rows))
    assert not c["failing"].any() and set(c["verdict"]) == {"same"}


@pytest.mark.parametrize(("new", "verdict", "failing"), [
    (_row(max_ulp=1.5), "regressed", True),  # grew beyond its 1-ULP budget
    (_row(max_ulp=0.9), "worse", False),  # grew, within budget: shown, not failed
    (_row(max_ulp=0.3), "better", False),
    (_row(max_ulp=0.5, mismatches=1), "regressed", True),  # a new special-value mismatch
    (_row(max_ulp=0.5, status="error", error="ValueError: boom"), "regressed", True),
    # within budget once rounded, but a caller gets float64: a regression all the same
    (_row(max_ulp=0.5, status="wrong_dtype", error="f returned float64 for float32 input; "
          "rounded to float32 and audited"), "regressed", True),
])
def test_accuracy_verdicts(new, verdict, failing):
    c = compare_accuracy(_audit([_row()]), _audit([new]))
    assert c.loc[0, "verdict"] == verdict and bool(c.loc[0, "failing"]) is failing


def test_a_peer_error_now_measured_as_wrong_dtype_is_not_a_regression():
    # numpy-seed's float64 result for float32 input was an error row without a ULP figure;
    # rounded and audited it shows its 1.7e7 ULP: measured for the first time, not grown
    note = "f returned float64 for float32 input; rounded to float32 and audited"
    base = [_row(impl="numpy-seed", max_ulp=float("nan"), status="error",
                 error="f returned float64 for float32 input")]
    new = [_row(impl="numpy-seed", max_ulp=1.7e7, status="wrong_dtype", error=note)]
    c = compare_accuracy(_audit(base), _audit(new))
    assert c.loc[0, "verdict"] == "out of budget" and not c.loc[0, "failing"]
    assert c.loc[0, "reason"] == f"{note} (max ULP 1.7e+07)"
    ours = compare_accuracy(_audit([{**base[0], "impl": "ours"}]), _audit([{**new[0], "impl": "ours"}]))
    assert ours.loc[0, "failing"]  # ours out of budget fails, whatever it was before


def test_a_peer_far_out_of_budget_fails_only_by_getting_worse():
    base = [_row(impl="torch", max_ulp=1.7e7)]
    assert not compare_accuracy(_audit(base), _audit(base))["failing"].any()
    worse = compare_accuracy(_audit(base), _audit([_row(impl="torch", max_ulp=2e7)]))
    assert worse.loc[0, "verdict"] == "regressed" and worse.loc[0, "failing"]


def test_our_row_out_of_budget_fails_even_if_it_already_was():
    rows = [_row(max_ulp=1.5)]
    c = compare_accuracy(_audit(rows), _audit(rows))
    assert c.loc[0, "verdict"] == "out of budget" and c.loc[0, "failing"]


def test_a_row_missing_from_the_new_results_fails():
    c = compare_accuracy(_audit([_row(), _row(domain="wide")]), _audit([_row()]))
    missing = c[c["verdict"] == "missing"]
    assert len(missing) == 1 and missing["failing"].all() and missing["domain"].iloc[0] == "wide"


def test_a_loosened_budget_is_shown():
    c = compare_accuracy(_audit([_row(budget=1.0)]), _audit([_row(budget=2.0)]))
    assert c.loc[0, "budget_change"] == "loosened" and not c.loc[0, "failing"]


# ---------------------------------------------------------------- speed


def test_a_b_runs_of_unchanged_code_raise_no_alarm():
    # 20 pairs of runs of the same code, each machine state different (compute ±8 %, memory
    # ±8 %): normalised by the run's yardsticks (where they track the machine, as here), no
    # benchmark may be called slower
    rng = np.random.default_rng(5)
    for _ in range(20):
        base = _speed(rng, cpu=rng.uniform(0.92, 1.08), mem=rng.uniform(0.92, 1.08))
        new = _speed(rng, cpu=rng.uniform(0.92, 1.08), mem=rng.uniform(0.92, 1.08))
        c = compare_speed(base, new, normalize="run")
        assert not c["failing"].any(), c[c["failing"]]


def test_a_25_percent_slowdown_of_one_kernel_is_caught_whatever_the_machine_does():
    rng = np.random.default_rng(6)
    base = _speed(rng, cpu=1.0)
    new = _speed(rng, cpu=0.85, scale={"k07": 1.25})  # the machine is 15 % faster now
    c = compare_speed(base, new, normalize="run")
    assert list(c.loc[c["failing"], "activation"]) == ["k07"]
    row = c[c["activation"] == "k07"].iloc[0]
    assert row["verdict"] == "slower" and row["ratio"] == pytest.approx(1.25, rel=0.05)
    assert row["normalized_by"] == "cpu (run)"
    assert row["raw_ratio"] == pytest.approx(1.25 * 0.85, rel=0.05)  # raw times hid most of it


def test_without_normalisation_a_slower_machine_looks_like_a_regression():
    rng = np.random.default_rng(7)
    c = compare_speed(_speed(rng), _speed(rng, cpu=1.25), normalize="none")
    assert c["failing"].sum() >= 40  # every compute-bound kernel
    c = compare_speed(_speed(rng), _speed(rng, cpu=1.25), normalize="run")
    assert not c["failing"].any()


def test_memory_bound_kernels_are_measured_against_the_copy():
    rng = np.random.default_rng(8)
    c = compare_speed(_speed(rng), _speed(rng, mem=1.3), normalize="run")  # memory 30 % slower
    row = c[c["activation"] == "memcpyish"].iloc[0]
    assert row["normalized_by"] == "copy (run)" and row["verdict"] == "same"
    assert yardstick(1.2e-5, 1e-5) == "copy" and yardstick(1e-4, 1e-5) == "cpu"


def test_the_spread_between_baseline_runs_widens_the_threshold():
    # k05 moved by 30 % between three baseline runs of the same code (pooled median at the
    # middle run, slowest run 13 % above it); k06 stayed put. Both are 20 % slower than the
    # pooled median now: only k06's slowdown is beyond what the baseline showed as drift.
    rng = np.random.default_rng(13)
    base = pd.concat([_speed(rng, repeat=r, scale={"k05": f}) for r, f in enumerate((1.0, 1.15, 1.3))],
                     ignore_index=True)
    c = compare_speed(base, _speed(rng, scale={"k05": 1.2 * 1.15, "k06": 1.2})).set_index("activation")
    assert c.loc["k05", "base_spread"] == pytest.approx(1.3, rel=0.03)
    assert c.loc["k05", "threshold"] == pytest.approx(1.1 * 1.3 / 1.15, rel=0.03)
    assert c.loc["k05", "verdict"] == "same" and c.loc["k06", "verdict"] == "slower"
    assert c.loc["k06", "threshold"] == pytest.approx(1.1, rel=0.03)
    assert c.loc["k06", "base_runs"] == 3 and c.loc["k06", "new_runs"] == 1


def test_the_runs_drift_divides_out_and_is_judged_on_its_own():
    rng = np.random.default_rng(15)
    # the machine runs 10 % faster than at the baseline, and k04 got 25 % slower
    c = compare_speed(_speed(rng), _speed(rng, cpu=0.9, scale={"k04": 1.25})).set_index("activation")
    assert c.loc["k04", "normalized_by"] == "compute drift"
    assert c.loc["k04", "ratio"] == pytest.approx(1.25, rel=0.03)  # raw: 1.25 × 0.9
    assert list(c.index[c["failing"]]) == ["k04"]
    everything = c[c["drift"] & (c["bound"] == "compute")].iloc[0]
    assert everything["ratio"] == pytest.approx(0.9, rel=0.02) and everything["verdict"] == "faster"
    # every kernel 25 % slower at once: no single kernel stands out, the drift row fails
    c = compare_speed(_speed(rng), _speed(rng, cpu=1.25))
    failing = c[c["failing"]]
    assert failing["drift"].tolist() == [True] and failing["bound"].tolist() == ["compute"]
    assert failing["activation"].tolist() == ["*"]  # a class of kernels, marked by its column
    assert failing["ratio"].iloc[0] == pytest.approx(1.25, rel=0.02)


def _baseline(rng, factors=(0.93, 0.97, 1.0, 1.03, 1.07), **kw):
    """A baseline of several runs, the machine at a different speed in each."""
    return pd.concat([_speed(rng, cpu=f, mem=f, repeat=r, **kw) for r, f in enumerate(factors)],
                     ignore_index=True)


def test_a_rerun_of_a_few_benchmarks_uses_the_full_comparisons_drift():
    rng = np.random.default_rng(17)
    base = _baseline(rng)
    full = compare_speed(base, _speed(rng, cpu=0.9, scale={"k04": 1.2}))
    assert full.set_index("activation").loc["k04", "verdict"] == "slower"
    few = _speed(rng, cpu=0.9, scale={"k04": 1.2})
    few = few[few["activation"].isin(["copy", "k04"])]
    # alone, k04 is too few to measure either side's drift by: the baseline's five runs look
    # spread out and the faster machine hides part of the change
    alone = compare_speed(base, few).set_index("activation").loc["k04"]
    assert alone["verdict"] == "same"
    again = compare_speed(base, few, drift=full.attrs["drift"]).set_index("activation")
    assert again.loc["k04", "ratio"] == pytest.approx(1.2, rel=0.03)
    first_threshold = full.set_index("activation").loc["k04", "threshold"]
    assert again.loc["k04", "threshold"] == pytest.approx(first_threshold)
    assert again.loc["k04", "verdict"] == "slower"
    assert not again["drift"].any()  # the rerun does not judge the drift


def test_a_a_with_a_repeated_baseline_and_the_default_drift():
    # the baseline's five runs and each new run see the machine at a different speed
    # (±7 %, as measured here); unchanged code must not fail
    rng = np.random.default_rng(18)
    base = _baseline(rng)
    for _ in range(20):
        c = compare_speed(base, _speed(rng, cpu=rng.uniform(0.93, 1.07), mem=rng.uniform(0.93, 1.07)))
        assert not c["failing"].any(), c[c["failing"]]


def test_peers_do_not_move_the_drift():
    rng = np.random.default_rng(19)
    base = _speed(rng).assign(impl="numpy-seed")
    new = _speed(rng, cpu=1.3, mem=1.3).assign(impl="numpy-seed")
    c = compare_speed(base, new)
    assert not c["failing"].any() and not c["drift"].any()


def test_the_gate_reruns_single_benchmarks_not_the_drift_row(tmp_path):
    from types import SimpleNamespace

    rng = np.random.default_rng(20)
    c = SimpleNamespace(speed=compare_speed(_speed(rng), _speed(rng, cpu=1.3)))
    assert c.speed[c.speed["drift"]].set_index("bound").loc["compute", "verdict"] == "slower"
    args = SimpleNamespace(alpha=0.05, min_effect=0.1, min_effect_memory=0.5, normalize="drift")
    # nothing but the drift row is slower: no rerun (it would name no real activation)
    assert gating._gate_confirm(c, None, ["bench"], tmp_path, args, io.StringIO()) is None


def test_empty_benchmark_files_are_refused(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "speed-raw.json").write_text('{"benchmarks": []}')
    code, _, err = _main("compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert code == 2 and "hold no benchmark" in err


def test_malformed_benchmark_fields_are_refused(tmp_path):
    rng = np.random.default_rng(21)
    raw = _raw(_speed(rng, kernels=2))
    raw["benchmarks"][1]["extra_info"]["size"] = "abc"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "speed-raw.json").write_text(json.dumps(raw))
    with pytest.raises(ResultsError, match="non-number"):
        load(tmp_path / "a")
    raw["benchmarks"][1]["stats"] = [1, 2]
    (tmp_path / "a" / "speed-raw.json").write_text(json.dumps(raw))
    with pytest.raises(ResultsError, match="no raw samples"):
        load(tmp_path / "a")


def test_memory_bound_kernels_need_a_larger_effect():
    # measured here: kernels at the copy roofline drift by up to 45 % between runs of the same
    # code, so 30 % is not called; an extra pass over the array (2x) is (one memory-bound
    # kernel: too few for a drift of its class, so its raw times are compared)
    rng = np.random.default_rng(16)
    c = compare_speed(_speed(rng), _speed(rng, scale={"memcpyish": 1.3})).set_index("activation")
    assert c.loc["memcpyish", "bound"] == "memory" and c.loc["memcpyish", "verdict"] == "same"
    assert c.loc["memcpyish", "threshold"] == pytest.approx(1.5, rel=0.03)
    c = compare_speed(_speed(rng), _speed(rng, scale={"memcpyish": 2.0})).set_index("activation")
    assert c.loc["memcpyish", "verdict"] == "slower" and c.loc["memcpyish", "failing"]
    assert c.loc["k00", "bound"] == "compute"


def test_a_small_significant_drift_is_below_the_minimum_effect():
    rng = np.random.default_rng(9)
    c = compare_speed(_speed(rng), _speed(rng, scale={"k03": 1.05}))
    row = c[c["activation"] == "k03"].iloc[0]
    assert row["q_slower"] < 0.05 and row["verdict"] == "same" and not row["failing"]


def test_missing_untestable_and_peer_benchmarks():
    rng = np.random.default_rng(10)
    base = _speed(rng, kernels=3)
    new = _speed(rng, kernels=2, scale={"k00": 2.0})
    peer = pd.DataFrame([{**_bench("k00", rng.lognormal(np.log(1e-4), 0.03, 30),
                                   impl="torch")["extra_info"], "repeat": 0, "samples": s}
                         for s in (rng.lognormal(np.log(1e-4), 0.03, 30),)])
    slow_peer = peer.assign(samples=[peer["samples"][0] * 2])
    c = compare_speed(pd.concat([base, peer], ignore_index=True),
                      pd.concat([new, slow_peer], ignore_index=True),
                      normalize="none").set_index(["impl", "activation"])
    assert c.loc[("ours", "k02"), "verdict"] == "missing" and c.loc[("ours", "k02"), "failing"]
    assert c.loc[("torch", "k00"), "verdict"] == "slower"
    assert not c.loc[("torch", "k00"), "failing"]  # peers are reported, not gated
    few = _speed(rng, kernels=1, n=3)
    c = compare_speed(few, few, normalize="none")
    assert set(c["verdict"]) == {"untestable"} and not c["failing"].any()


def test_a_slowdown_must_show_again_in_the_confirmation_run():
    rng = np.random.default_rng(14)
    base = _speed(rng)
    # first run: k01 really slower, k02 hit by a neighbour's burst; the rerun sees only k01
    first = compare_speed(base, _speed(rng, scale={"k01": 1.3, "k02": 1.7}))
    again = compare_speed(base, _speed(rng, scale={"k01": 1.3}))
    c = confirm(first, again).set_index("activation")
    assert c.loc["k01", "verdict"] == "slower" and c.loc["k01", "failing"]
    assert c.loc["k02", "verdict"] == "unconfirmed" and not c.loc["k02", "failing"]
    assert c.loc["k02", "confirm_ratio"] == pytest.approx(1.0, abs=0.05)
    md_rows = summary._speed_rows(c.reset_index().loc[lambda d: d["verdict"] == "unconfirmed"])
    assert md_rows[0][-1] == "unconfirmed"


# ---------------------------------------------------------------- files, CLI, Markdown


def _raw(df):
    return {"benchmarks": [{"name": f"b{i}", "extra_info": {k: (v.item() if hasattr(v, "item")
                                                                 else v)
                                                             for k, v in r.items() if k != "samples"},
                            "stats": {"data": list(r["samples"])}}
                           for i, r in enumerate(df.to_dict("records"))]}


def _result_dir(path, rows=None, speed=None):
    if rows is not None:
        _write_audit(path, rows)
    if speed is not None:
        write_atomic(path / "speed-raw.json", json.dumps(_raw(speed)))
        write_atomic(path / "speed.json", json.dumps({"schema_version": 1, "threads": 1}))
    return path


def _main(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_compare_exit_codes_and_summary(tmp_path, monkeypatch):
    rng = np.random.default_rng(11)
    base = _result_dir(tmp_path / "base", [_row(), _row(domain="wide")], _speed(rng, kernels=5))
    same = _result_dir(tmp_path / "same", [_row(), _row(domain="wide")], _speed(rng, kernels=5))
    code, out, _ = _main("compare", str(base), str(same))
    assert code == 0 and out.startswith("## actbench compare: PASS")

    bad = _result_dir(tmp_path / "bad", [_row(), _row(domain="wide", max_ulp=3.0)],
                      _speed(rng, kernels=5, scale={"k02": 1.3}))
    step = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    code, out, _ = _main("compare", str(base), str(bad), "--markdown", str(tmp_path / "s.md"),
                         "--out", str(tmp_path / "cmp"))
    assert code == 1
    assert out.startswith("## actbench compare: FAIL — 1 accuracy row(s) and 1 benchmark(s)")
    assert "| sigmoid.accurate.forward | float32 | wide | 0.5 | 3 | 1 | **FAIL** regressed |" in out
    assert "`x=0x1.8p+4` got 0.99 want 0.98" in out  # the worst input, in hex
    assert "| k02.accurate.forward | float32 | 1e5 | 1 |" in out and "**FAIL** slower" in out
    assert "<details>" in out
    assert step.read_text() == (tmp_path / "s.md").read_text() + "\n"
    assert (tmp_path / "cmp" / "compare-speed.csv").exists()


def test_a_closed_stdout_does_not_change_the_verdict(tmp_path):
    class Closed(io.StringIO):
        def write(self, text):
            raise BrokenPipeError

    base = _result_dir(tmp_path / "base", [_row()])
    bad = _result_dir(tmp_path / "bad", [_row(max_ulp=3.0)])
    assert cli.main(["compare", str(base), str(bad)], out=Closed(), err=io.StringIO()) == 1


@pytest.mark.parametrize(("setup", "message"), [
    (lambda p: None, "is not a directory of results"),
    (lambda p: p.mkdir(), "holds no results"),
    (lambda p: (p.mkdir(), (p / "speed-raw.json").write_text("{not json")), "is not valid JSON"),
    (lambda p: (p.mkdir(), (p / "speed-raw.json").write_text('{"benchmarks": [{"name": "x"}]}')),
     "lacks the actbench extra_info"),
    (lambda p: (p.mkdir(), (p / "audit.csv").write_text("a,b\n1,2\n")), "is not an audit table"),
])
def test_unreadable_result_sets_are_usage_errors(tmp_path, setup, message):
    good = _result_dir(tmp_path / "good", [_row()])
    setup(tmp_path / "x")
    code, _, err = _main("compare", str(good), str(tmp_path / "x"))
    assert code == 2 and message in err and err.count("\n") == 1


def test_schema_mismatch_is_refused(tmp_path):
    d = _result_dir(tmp_path / "d", [_row()])
    meta = json.loads((d / "audit.json").read_text())
    (d / "audit.json").write_text(json.dumps({**meta, "schema_version": 99}))
    with pytest.raises(ResultsError, match="schema version 99"):
        load(d)


def test_compare_needs_something_in_common(tmp_path):
    rng = np.random.default_rng(12)
    a = _result_dir(tmp_path / "a", [_row()])
    b = _result_dir(tmp_path / "b", speed=_speed(rng, kernels=2))
    code, _, err = _main("compare", str(a), str(b))
    assert code == 2 and "share neither" in err


def test_bad_compare_options(tmp_path):
    d = _result_dir(tmp_path / "d", [_row()])
    assert _main("compare", str(d), str(d), "--alpha", "1.5")[0] == 2
    assert _main("compare", str(d), str(d), "--min-effect", "-0.1")[0] == 2


def test_markdown_lists_budget_changes_and_notes(tmp_path):
    base = load(_result_dir(tmp_path / "a", [_row(budget=1.0)]))
    new = load(_result_dir(tmp_path / "b", [_row(budget=2.0)]))
    md = summary.markdown(compare(base, new))
    assert "- loosened: `sigmoid.accurate.forward float32` 1 → 2 ULP" in md
    assert md.startswith("## actbench compare: PASS")


# ---------------------------------------------------------------- the gate


def test_gate_reruns_the_baselines_own_selection():
    meta = {"profile": "full", "impls": ["ours", "torch"],
            "filters": {"activation": ["gelu"], "dtype": ["float32"], "domain": ["core"],
                        "points": 500}}
    argv = gate.audit_argv(meta, "OUT", ["--jobs", "2"])
    assert argv == ["audit", "--out", "OUT", "--profile", "full", "--activation", "gelu",
                    "--dtype", "float32", "--domain", "core", "--points", "500",
                    "--impl", "ours,torch", "--jobs", "2"]
    # a sampled exhaustive float32 baseline is rerun with its stride, not as the full sweep
    sampled = {"profile": "exhaustive", "filters": {"dtype": ["float32"], "sweep_stride": 4099}}
    assert gate.audit_argv(sampled, "OUT", [])[-4:] == ["--sweep-stride", "4099", "--impl", "ours"]
    speed_meta = {"threads": 2, "max_time": 0.25, "rounds": 20, "min_time": 0.001,
                  "filters": {"size": [100000], "dtype": ["float64"], "impl": ["ours"]}}
    argv = gate.bench_argv(speed_meta, "OUT", None)
    assert argv == ["bench", "--out", "OUT", "--dtype", "float64", "--size", "100000",
                    "--impl", "ours", "--threads", "2", "--max-time", "0.25", "--rounds", "20",
                    "--min-time", "0.001"]


def test_the_gate_reruns_a_user_callable_with_its_library_and_autograd():
    meta = {"impls": ["m:f"], "impl_derivative": "autograd", "impl_library": "jax",
            "filters": {"activation": ["gelu"]}}
    assert gate.audit_argv(meta, "OUT", [])[-6:] == ["--impl", "m:f", "--impl-derivative", "autograd",
                                                     "--impl-library", "jax"]
    assert gate.bench_argv({**meta, "filters": {"impl": ["m:f"]}}, "OUT", None)[-4:] == [
        "--impl-derivative", "autograd", "--impl-library", "jax"]


def test_the_confirmation_rerun_times_only_what_was_flagged():
    bench = ["bench", "--out", "RUN", "--dtype", "float32,float64", "--size", "100000",
             "--impl", "ours", "--threads", "1", "--repeat", "1", "--audit", "RUN/audit.csv"]
    flagged = pd.DataFrame({"activation": ["sigmoid", "sigmoid", "tanh"],
                            "direction": ["forward", "forward", "derivative"],
                            "dtype": ["float32", "float64", "float64"]})
    assert gate.confirm_argv(bench, flagged, "AGAIN") == [
        "bench", "--size", "100000", "--impl", "ours", "--threads", "1", "--repeat", "1",
        "--out", "AGAIN", "--activation", "sigmoid,tanh", "--direction", "forward,derivative",
        "--dtype", "float32,float64"]


def test_gate_usage_errors(tmp_path):
    code, _, err = _main("gate", "--baseline", str(tmp_path / "none"), "--out", str(tmp_path))
    assert code == 2 and "record one with actbench gate" in err
    _result_dir(tmp_path / "base", [_row()])
    code, _, err = _main("gate", "--baseline", str(tmp_path / "base"), "--out", str(tmp_path / "base"))
    assert code == 2 and "would overwrite the baseline" in err
    code, _, err = _main("gate", "--baseline", str(tmp_path), "--activation", "gelu")
    assert code == 2 and "go with --record" in err


def test_gate_catches_an_accuracy_regression(tmp_path, monkeypatch):
    base = tmp_path / "baseline"
    code, out, err = _main("gate", "--baseline", str(base), "--record", "--only", "accuracy",
                           "--activation", "sigmoid", "--dtype", "float32", "--jobs", "1")
    assert code == 0, err
    assert "audit.csv" in out and not list(base.glob(".record-*"))
    code, out, err = _main("gate", "--baseline", str(base), "--out", str(tmp_path / "g1"),
                           "--jobs", "1")
    assert code == 0, out + err
    assert out.startswith("## actbench gate: PASS") and (tmp_path / "g1" / "gate.md").exists()

    # sigmoid computed naively in float32: exp(-x) overflows where sigmoid is a subnormal
    def naive(x, out=None):
        one = x.dtype.type(1)
        return one / (one + np.exp(-x))

    variant = catalog.CATALOG["sigmoid"].variants[0]
    monkeypatch.setitem(variant.kernels, "forward", naive)
    code, out, err = _main("gate", "--baseline", str(base), "--out", str(tmp_path / "g2"),
                           "--jobs", "1")
    assert code == 1
    assert "**FAIL** regressed" in out and "sigmoid.accurate.forward | float32" in out
    assert "`x=-0x1." in out  # the worst input, a negative hex float near the overflow edge


def test_a_failed_recording_keeps_the_old_baseline(tmp_path, monkeypatch):
    base = tmp_path / "baseline"
    assert _main("gate", "--baseline", str(base), "--record", "--only", "accuracy",
                 "--activation", "relu", "--dtype", "float32", "--jobs", "1")[0] == 0
    before = (base / "audit.csv").read_bytes()
    variant = catalog.CATALOG["relu"].variants[0]
    monkeypatch.setitem(variant.kernels, "forward", lambda x, out=None: x * 2)
    code, _, err = _main("gate", "--baseline", str(base), "--record", "--only", "accuracy",
                         "--activation", "relu", "--dtype", "float32", "--jobs", "1")
    assert code == 1 and "left as it was" in err
    assert (base / "audit.csv").read_bytes() == before
