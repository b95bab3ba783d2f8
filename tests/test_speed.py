"""The speed table from pytest-benchmark JSON (synthetic samples: no timing is asserted),
and the `actbench bench` plumbing on a tiny run."""

import io
import json

import pandas as pd
import pytest

from actbench import cli
from actbench.speed.timing import speed_table


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
    out = io.StringIO()
    code = cli.main(["bench", "--activation", "relu", "--size", "1000", "--dtype", "float32",
                     "--max-time", "0.001", "--out", str(tmp_path)], out=out, err=io.StringIO())
    assert code == 0, out.getvalue()
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
