"""The speed table from pytest-benchmark JSON (synthetic samples: no timing is asserted),
and the `actbench bench` plumbing on a tiny run."""

import importlib.util
import io
import json

import numpy as np
import pandas as pd
import pytest

from actbench_ulp import cli
from actbench_ulp.speed.timing import BEST_COLUMNS, best_within_target, speed_table


def _bench(impl, activation, median, iqr, size=1000, dtype="float32", bytes_=8000,
           direction="forward"):
    return {"extra_info": {"impl": impl, "activation": activation, "variant": "-",
                           "direction": direction, "kind": "elementwise", "dtype": dtype,
                           "size": size, "bytes": bytes_, "threads": 1, "first_call_s": 0.5,
                           "max_ulp": 0.5},
            "stats": {"median": median, "iqr": iqr, "rounds": 7}}


def test_ratios_are_taken_within_the_run():
    raw = {"benchmarks": [
        _bench("np.copyto", "copy", 1e-6, 1e-8),
        _bench("ours", "gelu", 4e-6, 4e-7),
        _bench("numpy-seed", "gelu", 8e-6, 1e-7),
        _bench("torch", "gelu", 2e-6, 1e-7),
    ]}
    t = speed_table(raw).set_index("impl")
    ours = t.loc["ours"]
    assert ours["ns_per_element"] == pytest.approx(4.0)  # 4 µs / 1000 elements
    assert ours["gb_per_s"] == pytest.approx(2.0)  # 8000 bytes / 4 µs
    assert ours["roofline_fraction"] == pytest.approx(0.25)  # copy moved them in 1 µs
    assert ours["time_vs_copy"] == pytest.approx(4.0)
    assert ours["speedup_vs_numpy_seed"] == pytest.approx(2.0)
    assert ours["speedup_vs_torch"] == pytest.approx(0.5)
    assert ours["noise"] == pytest.approx(0.1)  # IQR / median


def test_empty_json_gives_an_empty_table():
    assert speed_table({"benchmarks": []}).empty


def test_actbench_bench_runs_the_suite_and_writes_the_table(tmp_path):
    (tmp_path / "speed-best.csv").write_text("an earlier run's\n")
    out = io.StringIO()
    code = cli.main(["bench", "--activation", "relu", "--size", "1000", "--dtype", "float32",
                     "--max-time", "0.001", "--out", str(tmp_path)], out=out, err=io.StringIO())
    assert code == 0, out.getvalue()
    # no audit.csv in --out: no table of the fastest within target, but how to make one, and
    # no earlier run's table left beside this run's speed.csv
    assert f"no audit table at {tmp_path / 'audit.csv'}" in out.getvalue()
    assert f"actbench audit --activation relu --dtype float32 --out {tmp_path}" in out.getvalue()
    assert not (tmp_path / "speed-best.csv").exists()
    table = pd.read_csv(tmp_path / "speed.csv")
    assert set(table["impl"]) == {"ours", "np.copyto"}
    assert set(table[table["impl"] == "ours"]["direction"]) == {"forward", "derivative"}
    assert (table["rounds"] >= 5).all() and (table["threads"] == 1).all()
    meta = json.loads((tmp_path / "speed.json").read_text())
    assert meta["threads"] == 1 and meta["machine_info"]
    assert json.loads((tmp_path / "speed-raw.json").read_text())["benchmarks"]


def test_bench_usage_errors():
    err = io.StringIO()
    assert cli.main(["bench", "--impl", "numpy"], out=io.StringIO(), err=err) == 2
    assert "unknown implementation 'numpy'" in err.getvalue()


def test_repeated_runs_make_one_row_with_their_drift():
    raw = {"benchmarks": [
        {**_bench("np.copyto", "copy", 1e-6, 1e-8), "extra_info": {
            **_bench("np.copyto", "copy", 1e-6, 1e-8)["extra_info"], "repeat": r}}
        for r in range(2)] + [
        {**_bench("ours", "gelu", m, 0.1 * m), "extra_info": {
            **_bench("ours", "gelu", m, 0.1 * m)["extra_info"], "repeat": r}}
        for r, m in enumerate((4e-6, 5e-6))]}
    t = speed_table(raw).set_index("impl")
    assert len(t) == 2 and t.loc["ours", "runs"] == 2
    assert t.loc["ours", "drift"] == pytest.approx(1.25)  # 5 µs / 4 µs
    assert t.loc["ours", "median_s"] == pytest.approx(4.5e-6)
    assert t.loc["ours", "rounds"] == 14


def test_bench_times_a_users_function_beside_ours(tmp_path):
    out = io.StringIO()
    code = cli.main(["bench", "--activation", "gelu", "--direction", "forward", "--impl",
                     "ours,tests.userkernels:good_gelu", "--size", "1000", "--dtype", "float32",
                     "--max-time", "0.001", "--out", str(tmp_path)], out=out, err=io.StringIO())
    assert code == 0, out.getvalue()
    table = pd.read_csv(tmp_path / "speed.csv")
    assert set(table["impl"]) == {"ours", "tests.userkernels:good_gelu", "np.copyto"}
    raw = json.loads((tmp_path / "speed-raw.json").read_text())
    # every benchmark carries the two yardsticks that actbench compare normalises by
    assert all(b["extra_info"]["copy_s"] > 0 and b["extra_info"]["cpu_s"] > 0
               for b in raw["benchmarks"] if b["extra_info"]["impl"] != "np.copyto")


def test_bench_user_function_needs_one_activation():
    err = io.StringIO()
    assert cli.main(["bench", "--impl", "tests.userkernels:good_gelu"], out=io.StringIO(),
                    err=err) == 2
    assert "give exactly one --activation" in err.getvalue()


def test_thread_speedup_is_carried_over_runs():
    def row(r, speedup):
        b = _bench("ours", "sigmoid", 1e-6, 1e-8)
        b["extra_info"].update(repeat=r, threads=2, thread_speedup=speedup,
                               thread_speedup_noise=0.1)
        return b
    t = speed_table({"benchmarks": [row(0, 1.8), row(1, 2.0)]})
    assert t["thread_speedup"].iloc[0] == pytest.approx(1.9)  # the median over the two runs
    # one-thread runs have no such measurement
    assert speed_table({"benchmarks": [_bench("ours", "relu", 1e-6, 1e-8)]})[
        "thread_speedup"].isna().all()


def test_two_thread_bench_times_one_thread_beside_it(tmp_path):
    code = cli.main(["bench", "--activation", "sigmoid", "--variant", "simd", "--direction",
                     "forward", "--size", "300000", "--dtype", "float32", "--threads", "2",
                     "--max-time", "0.001", "--out", str(tmp_path)],
                    out=io.StringIO(), err=io.StringIO())
    assert code == 0
    table = pd.read_csv(tmp_path / "speed.csv")
    ours = table[table["impl"] == "ours"]
    # measured, not asserted: a ratio of two positive times (no speed claim on a shared machine)
    assert len(ours) == 1 and (ours["thread_speedup"] > 0).all() and (ours["threads"] == 2).all()


# ------------------------------------------------- the fastest of ours within the target

def _timed(impl, activation, direction, ns, variant="-", kind="elementwise", noise=0.01,
           row_length=None):
    return {"impl": impl, "activation": activation, "kind": kind, "variant": variant,
            "direction": direction, "dtype": "float32", "size": 1000, "row_length": row_length,
            "ns_per_element": ns, "noise": noise}


def _audited(activation, variant, direction, worst, domain="core", dtype="float32", status="ok",
             mismatches=0, impl="ours"):
    return {"impl": impl, "activation": activation, "variant": variant, "direction": direction,
            "dtype": dtype, "domain": domain, "max_ulp": worst, "special_mismatches": mismatches,
            "budget_max_ulp": 2.0, "status": status, "budget_reason": "", "error": "",
            "worst_points": "[]"}


def _best_inputs():
    speed = pd.DataFrame([
        # sigmoid forward: simd_f32_fast is fastest but 1.5 ULP > the 1 ULP target (its own
        # budget is looser); simd_f32 is faster still but has no audit row; jax beats torch
        _timed("ours", "sigmoid", "forward", 4.0, "accurate"),
        _timed("ours", "sigmoid", "forward", 2.0, "simd", noise=0.03),
        _timed("ours", "sigmoid", "forward", 1.0, "simd_f32_fast"),
        _timed("ours", "sigmoid", "forward", 0.5, "simd_f32"),
        _timed("torch", "sigmoid", "forward", 3.0),
        _timed("jax", "sigmoid", "forward", 2.5, noise=0.02),
        # sigmoid derivative: the same 1.5 ULP is within the 2 ULP derivative target
        _timed("ours", "sigmoid", "derivative", 3.0, "accurate"),
        _timed("ours", "sigmoid", "derivative", 1.5, "simd_f32_fast"),
        _timed("torch", "sigmoid", "derivative", 1.0),
        _timed("jax", "sigmoid", "derivative", 2.0),
        # gated: a special-value mismatch and an error in the audit exclude the fast variant
        *[_timed("ours", "glu", d, ns, v, kind="gated") for d in ("forward", "d_a", "d_b")
          for v, ns in (("accurate", 2.0), ("fast", 1.0))],
        *[_timed("torch", "glu", d, 4.0, kind="gated") for d in ("forward", "d_a", "d_b")],
        # row-wise at two row lengths, timed against jax only
        *[_timed("ours", "softmax", d, ns * rl / 100, v, kind="rowwise", row_length=rl)
          for d in ("forward", "vjp") for rl in (100, 1000) for v, ns in (("accurate", 2.0), ("fast", 1.0))],
        *[_timed("jax", "softmax", d, 4.0, kind="rowwise", row_length=rl)
          for d in ("forward", "vjp") for rl in (100, 1000)],
        # not ours, not a peer of this table: never chosen
        _timed("numpy-seed", "sigmoid", "forward", 0.1),
        _timed("np.copyto", "copy", "-", 0.05),
    ])
    audit = pd.DataFrame([
        _audited("sigmoid", "accurate", "forward", 0.5),
        _audited("sigmoid", "simd", "forward", 0.5),
        _audited("sigmoid", "simd", "forward", 0.9, domain="wide"),  # the worst domain counts
        _audited("sigmoid", "simd_f32_fast", "forward", 0.8),
        _audited("sigmoid", "simd_f32_fast", "forward", 1.5, domain="exhaustive"),
        _audited("sigmoid", "simd_f32", "forward", 0.5, dtype="float64"),  # another dtype's
        _audited("sigmoid", "accurate", "derivative", 0.5),
        _audited("sigmoid", "simd_f32_fast", "derivative", 1.5),
        *[_audited("glu", "accurate", d, 0.5) for d in ("forward", "d_a", "d_b")],
        _audited("glu", "fast", "forward", 0.7),
        _audited("glu", "fast", "d_a", 0.5, mismatches=1),
        _audited("glu", "fast", "d_b", np.nan, status="error"),
        *[_audited("softmax", v, d, 0.5) for d in ("forward", "vjp") for v in ("accurate", "fast")],
        # the peers as the audit has them (variant "-"): jax's sigmoid far off on one domain
        _audited("sigmoid", "-", "forward", 3.0, impl="jax"),
        _audited("sigmoid", "-", "forward", 2.1e6, impl="jax", domain="exhaustive"),
        _audited("sigmoid", "-", "derivative", 0.6, impl="torch"),
    ])
    return speed, audit


def test_best_within_target_holds_variants_to_the_standard_target():
    speed, audit = _best_inputs()
    best = best_within_target(speed, audit)
    assert list(best.columns) == BEST_COLUMNS
    rows = {(r.activation, r.direction, r.row_length if r.kind == "rowwise" else None): r
            for r in best.itertuples()}
    assert len(rows) == len(best) == 2 + 3 + 4  # elementwise, gated, row-wise × row lengths

    fwd = rows[("sigmoid", "forward", None)]
    assert (fwd.variant, fwd.max_ulp, fwd.ns_per_element, fwd.noise) == ("simd", 0.9, 2.0, 0.03)
    assert (fwd.target_ulp, fwd.peer, fwd.peer_ns_per_element, fwd.peer_noise) == (1.0, "jax", 2.5, 0.02)
    assert fwd.peer_max_ulp == 2.1e6  # the peer's worst domain, as for ours
    assert fwd.ratio_vs_peer == pytest.approx(2.0 / 2.5)
    assert fwd.excluded == "simd_f32_fast (1.5 ULP); simd_f32 (unaudited)"
    assert fwd.max_over == "sampled"  # no exhaustive row: the max ULP is a lower bound

    der = rows[("sigmoid", "derivative", None)]
    assert (der.variant, der.target_ulp, der.peer, der.excluded) == ("simd_f32_fast", 2.0, "torch", "")
    assert der.ratio_vs_peer == pytest.approx(1.5)  # 1.5 ns against torch's 1.0
    assert der.peer_max_ulp == 0.6
    assert np.isnan(rows[("glu", "forward", None)].peer_max_ulp)  # no audit row of the peer

    assert rows[("glu", "forward", None)].variant == "fast"
    assert rows[("glu", "forward", None)].ratio_vs_peer == pytest.approx(0.25)
    for direction, why in (("d_a", "special-value mismatch"), ("d_b", "error in the audit")):
        r = rows[("glu", direction, None)]
        assert (r.variant, r.peer, r.excluded) == ("accurate", "torch", f"fast ({why})")
        assert r.ratio_vs_peer == pytest.approx(0.5)

    for direction in ("forward", "vjp"):
        for rl, ratio in ((100, 0.25), (1000, 2.5)):  # fast at 1 and 10 ns against jax's 4
            r = rows[("softmax", direction, rl)]
            assert (r.variant, r.peer, r.excluded) == ("fast", "jax", "")
            assert r.ratio_vs_peer == pytest.approx(ratio)


def test_best_within_target_with_nothing_to_count_or_compare():
    speed, audit = _best_inputs()
    sigmoid = speed[(speed["activation"] == "sigmoid") & (speed["direction"] == "forward")
                    & (speed["impl"] == "ours")]
    # no audit rows at all: every variant unaudited, none chosen; no peer timed: no ratio
    best = best_within_target(sigmoid, audit.iloc[:0])
    assert len(best) == 1 and best["variant"].iloc[0] == "" and best["peer"].iloc[0] == ""
    assert best[["ns_per_element", "peer_ns_per_element", "ratio_vs_peer"]].isna().all(axis=None)
    assert best["excluded"].iloc[0] == ("accurate (unaudited); simd (unaudited); "
                                        "simd_f32_fast (unaudited); simd_f32 (unaudited)")
    # peers alone: nothing of ours to rank
    assert best_within_target(speed[speed["impl"] == "torch"], audit).empty


def test_actbench_bench_writes_and_prints_the_fastest_within_target(tmp_path):
    # a made-up audit: simd within the 2 ULP budget it gives but over the 1 ULP forward target,
    # which alone decides
    pd.DataFrame([_audited("relu", "accurate", "forward", 0.0),
                  _audited("relu", "simd", "forward", 1.5)]).to_csv(tmp_path / "audit.csv", index=False)
    peer = importlib.util.find_spec("torch") is not None  # torch is an optional extra
    out = io.StringIO()
    code = cli.main(["bench", "--activation", "relu", "--direction", "forward", "--size", "1000",
                     "--dtype", "float32", "--impl", "ours,torch" if peer else "ours",
                     "--max-time", "0.001", "--out", str(tmp_path)], out=out, err=io.StringIO())
    assert code == 0, out.getvalue()
    best = pd.read_csv(tmp_path / "speed-best.csv", keep_default_na=False)
    assert list(best.columns) == BEST_COLUMNS and len(best) == 1
    row = best.iloc[0]
    assert (row["variant"], row["max_ulp"], row["excluded"]) == ("accurate", 0.0, "simd (1.5 ULP)")
    speed = pd.read_csv(tmp_path / "speed.csv").set_index(["impl", "variant"])["ns_per_element"]
    assert row["ns_per_element"] == pytest.approx(speed["ours", "accurate"])
    if peer:
        assert row["peer"] == "torch"
        assert row["ratio_vs_peer"] == pytest.approx(speed["ours", "accurate"] / speed["torch", "-"])
    meta = json.loads((tmp_path / "speed-best.json").read_text())
    assert meta["audit"] == [str(tmp_path / "audit.csv")] and meta["cpu"]["model"] is not None
    printed = out.getvalue().split("fastest of ours within the accuracy target")[1].splitlines()
    lines = [line for line in printed if line.split()[:1] == ["relu"]]
    assert len(lines) == 1 and "accurate" in lines[0] and "simd (1.5 ULP)" in lines[0]


@pytest.mark.parametrize("content, message", [
    ("activation,variant\nrelu,accurate\n", "is not an audit table"),
    ("impl,activation,variant,direction,dtype,domain,max_ulp,special_mismatches,budget_max_ulp,"
     "status,budget_reason,error,worst_points\nours,relu,simd,forward,float32,core,lots,0,1,ok,,,[]\n",
     "column max_ulp has a non-number 'lots'"),
])
def test_a_corrupt_audit_stops_the_bench_naming_it(tmp_path, content, message):
    (tmp_path / "audit.csv").write_text(content)
    err = io.StringIO()
    assert cli.main(["bench", "--activation", "relu", "--out", str(tmp_path)], out=io.StringIO(),
                    err=err) == 2
    assert str(tmp_path / "audit.csv") in err.getvalue() and message in err.getvalue()
    assert not (tmp_path / "speed.csv").exists()  # stopped before timing anything


def test_a_named_audit_that_is_absent_is_a_usage_error(tmp_path):
    err = io.StringIO()
    assert cli.main(["bench", "--audit", str(tmp_path / "nope.csv"), "--out", str(tmp_path)],
                    out=io.StringIO(), err=err) == 2
    assert f"--audit {tmp_path / 'nope.csv'}: no such file" in err.getvalue()


def test_every_audit_given_counts(tmp_path):
    # the default audit samples; an exhaustive one beside it finds the variant's true worst
    # (here over the target): the variant is excluded on the worst of the two
    sampled, exhaustive = tmp_path / "sampled.csv", tmp_path / "exhaustive.csv"
    pd.DataFrame([_audited("relu", "accurate", "forward", 0.0),
                  _audited("relu", "simd", "forward", 0.5)]).to_csv(sampled, index=False)
    pd.DataFrame([_audited("relu", "simd", "forward", 1.25, domain="exhaustive"),
                  {**_audited("relu", "accurate", "forward", 0.0, domain="exhaustive"), "n": 2**32}]
                 ).to_csv(exhaustive, index=False)
    code = cli.main(["bench", "--activation", "relu", "--direction", "forward", "--size", "1000",
                     "--dtype", "float32", "--impl", "ours", "--max-time", "0.001",
                     "--audit", str(sampled), "--audit", str(exhaustive), "--out", str(tmp_path)],
                    out=io.StringIO(), err=io.StringIO())
    assert code == 0
    best = pd.read_csv(tmp_path / "speed-best.csv", keep_default_na=False).iloc[0]
    assert (best["variant"], best["excluded"]) == ("accurate", "simd (1.25 ULP)")
    assert best["max_over"] == "all inputs"  # a complete sweep (2**32 inputs) proves the maximum
    speed = pd.read_csv(tmp_path / "speed.csv").set_index("variant")["max_ulp"]
    assert speed["simd"] == 1.25  # the suite's max_ulp column takes both files too
    # one file, as a path or a string (the gate passes a Path), or a list of them
    from actbench_ulp.accuracy.table import worst_errors_from
    key = ("ours", "relu", "simd", "forward", "float32")
    assert worst_errors_from(sampled)[key] == worst_errors_from(str(sampled))[key] == 0.5
    assert worst_errors_from([sampled, exhaustive])[key] == 1.25


def test_bench_warns_when_its_audit_was_compiled_for_another_vector_width(tmp_path, capsys):
    # tanh's simd_f32 kernel is chosen by the CPU: an audit made for 256-bit code names another
    # kernel's max ULP on this one (and the reverse), which the run says
    pd.DataFrame([_audited("relu", "accurate", "forward", 0.0)]).to_csv(tmp_path / "audit.csv", index=False)
    from actbench_ulp.kernels import _target

    here = _target.describe()
    other = 256 if here["vector_bits"] != 256 else 512
    (tmp_path / "audit.json").write_text(json.dumps(
        {"compiler_target": {"cpu_name": "elsewhere", "vector_bits": other}}))
    code = cli.main(["bench", "--activation", "relu", "--direction", "forward", "--size", "1000",
                     "--dtype", "float32", "--impl", "ours", "--max-time", "0.001",
                     "--out", str(tmp_path)], out=io.StringIO(), err=io.StringIO())
    assert code == 0
    err = capsys.readouterr().err
    assert f"audited with kernels compiled for elsewhere ({other}-bit vectors)" in err
