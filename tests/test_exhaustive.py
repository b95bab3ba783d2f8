"""The exhaustive float32 domain (actbench_ulp.accuracy.exhaustive): a sampled sweep gives what the
mpmath audit of the same inputs gives, a wrong oracle is caught, an interrupted sweep resumes,
and a Dask cluster computes what the local pool computes.  The full sweep (every 2**32 input)
is `actbench audit --profile exhaustive`, run on demand; these run every 4099th pattern or
sparser."""

import json
import os

import numpy as np
import pytest

from actbench_ulp.accuracy import audit as audit_mod
from actbench_ulp.accuracy import exhaustive, oracle, sweep_chunk
from actbench_ulp.core import catalog, executors
from actbench_ulp.core.budgets import load_budgets
from actbench_ulp.core.exact import Cache, resolve_exact
from actbench_ulp.core.peers import resolve

BUDGETS = load_budgets()
SPARSE = 4099 * 64  # 16,386 inputs over the whole range: cheap enough to evaluate all with mpmath


def _case(activation, variant, direction):
    act = catalog.CATALOG[activation]
    return catalog.Case(act, act.variant(variant), direction)


def _strided(stride):
    return np.arange(0, 1 << 32, stride, dtype=np.uint64).astype(np.uint32).view(np.float32)


@pytest.mark.parametrize(("activation", "variant", "direction", "impl"), [
    ("silu", "simd_f32_fast", "forward", "ours"),  # errors above 1 ULP, none above 2
    ("silu", "accurate", "derivative", "numpy-seed"),  # finite differences: NaNs and 1e7 ULP
    # a `simd` variant's oracle is its own float64 loop, the same branches: mpmath must agree
    ("softplus", "simd", "derivative", "ours"),
    ("gelu", "simd", "forward", "ours"),
])
def test_sampled_sweep_gives_the_mpmath_audit_of_the_same_inputs(tmp_path, activation, variant,
                                                                   direction, impl):
    # the oracle path (float64 kernel, mpmath only where it cannot decide) against mpmath at
    # every one of the same 16,386 inputs: the maximum, its input, the counts above 0.5, 1 and
    # 2 ULP and the special-value mismatches are the same numbers, not merely close ones
    case = _case(activation, variant, direction)
    cache = Cache(tmp_path / "cache")
    row = audit_mod.sweep_row(case, BUDGETS, resolve(impl), stride=SPARSE, cache=cache)
    work = audit_mod.batches(case, "float32", "core", x=_strided(SPARSE))
    exact = resolve_exact([b.task for b in work], cache, jobs=2)
    want = audit_mod.audit(case, "float32", "core", BUDGETS, impl=resolve(impl), exact=exact, work=work)
    same = ["n", "max_ulp", "special_mismatches", "over_half_ulp", "over_1_ulp", "over_2_ulp",
            "worst_input", "worst_output", "passed"]
    assert {k: row[k] for k in same} == {k: want[k] for k in same}
    assert row["mean_ulp"] == pytest.approx(want["mean_ulp"], rel=1e-9)
    # p99 from the histogram: the upper edge of its 1/16-octave bin
    assert want["p99_ulp"] <= row["p99_ulp"] <= want["p99_ulp"] * 1.07 + 1e-300
    # mpmath checked far fewer points than the sweep ran (the oracle decided the rest)
    assert 0 < row["mpmath_checked"] < row["n"] / 10
    assert row["sweep"]["oracle_violations"] == []


def test_a_wrong_oracle_value_is_caught(tmp_path):
    # plant an error of 2**-20 (relative) in the oracle at one input, where the kernel itself is
    # right: the kernel then seems 8 ULP off there, mpmath re-checks that worst point, finds
    # the oracle outside its bound (3 float64 ULP), and the row fails naming the input
    case = _case("sigmoid", "simd_f32", "forward")
    planted = np.float32(-3.3125)
    real = case.activation.variant("simd").kernel("forward")

    def wrong_oracle(x64, **params):
        y = real(x64, **params)
        y[x64 == planted] *= 1 + 2.0**-20
        return y

    stride = 3 << 18  # 5,462 inputs, the planted one among them (its bits are 12,309 << 18)
    assert int(planted.view(np.uint32)) % stride == 0
    row = exhaustive.sweep(case, resolve("ours"), stride=stride, cache=Cache(None),
                           oracle_kernel=wrong_oracle)
    assert row["status"] == "error"
    assert "the oracle broke its bound" in row["error"] and "x=-0x1.a8p+1" in row["error"]
    assert row["sweep"]["oracle_violations"][0]["x"] == "-0x1.a8p+1"
    # and without the plant the same sweep is clean, its maximum confirmed
    clean = exhaustive.sweep(case, resolve("ours"), stride=stride, cache=Cache(None))
    assert clean["status"] == "ok" and clean["sweep"]["oracle_violations"] == []


def test_an_interrupted_sweep_resumes_and_repeats_no_finished_chunk(tmp_path, monkeypatch):
    case = _case("tanh", "simd_f32_fast", "forward")
    stride = 4099 * 8  # 131,040 inputs, in 16 chunks of 32 binades once chunks are this small
    small = 1 << 12
    assert len(sweep_chunk.chunks(stride, small)) == 16
    uninterrupted = exhaustive.sweep(case, resolve("ours"), stride=stride, cache=Cache(None),
                                     chunk_points=small)

    ran = []

    def counting(job, oracle_kernel=None):
        ran.append(job.chunk.index)
        return sweep_chunk.run_chunk(job, oracle_kernel)

    monkeypatch.setattr(exhaustive, "run_chunk", counting)

    class Stop:  # a progress bar whose fifth update is Ctrl-C
        def __init__(self, total, initial, desc):
            self.updates = 0

        def update(self, n):
            self.updates += 1
            if self.updates == 5:
                raise KeyboardInterrupt

        def close(self):
            pass

    cache = Cache(tmp_path / "cache")
    with pytest.raises(exhaustive.SweepInterrupted, match="5 of 16 chunks finished"):
        exhaustive.sweep(case, resolve("ours"), stride=stride, cache=cache, progress=Stop,
                         chunk_points=small)
    assert len(ran) == 5
    ran.clear()
    resumed = exhaustive.sweep(case, resolve("ours"), stride=stride, cache=cache, chunk_points=small)
    assert sorted(ran) == sorted(set(range(16)) - set(range(5)))  # the other 11, once each
    assert resumed["sweep"]["resumed_chunks"] == 5

    def measured(row):
        return {k: v for k, v in row.items() if k != "sweep"}, {
            k: v for k, v in row["sweep"].items() if k not in ("seconds", "resumed_chunks", "store")}

    assert measured(resumed) == measured(uninterrupted)
    # a stored chunk that was damaged is reported and measured again, nothing else
    store = next((tmp_path / "cache" / "sweeps").glob("*/*"))
    (store / "chunk-00003.json").write_text('{"schema": 1, "key": "x", "result": {')
    reported = []
    cache2 = Cache(tmp_path / "cache", report=reported.append)
    ran.clear()
    again = exhaustive.sweep(case, resolve("ours"), stride=stride, cache=cache2, chunk_points=small)
    assert ran == [3] and "chunk-00003.json is unusable" in reported[0]
    assert measured(again) == measured(uninterrupted)


def test_a_stored_sweep_serves_only_the_machine_code_that_made_it(monkeypatch):
    # the kernels (and torch's dispatch) depend on the CPU: a sweep stored for one target must
    # not answer for another (compiled for Haswell, tanh is the exp-based kernel, not the
    # table one), nor for another ATEN_CPU_CAPABILITY
    case = _case("tanh", "simd_f32", "forward")

    def key():
        return exhaustive._store_for(case, ("builtin", "ours"), 4099, 1 << 12, 1e-9, None, None).key

    here = key()
    assert key() == here
    monkeypatch.setattr(exhaustive, "machine_code", lambda: {"compiled_for": ["haswell", "+avx2"]})
    assert key() != here
    monkeypatch.undo()
    other = "avx2" if os.environ.get("ATEN_CPU_CAPABILITY") != "avx2" else "default"
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", other)
    assert key() != here


def test_a_chunk_from_another_kind_of_cpu_stops_the_sweep(monkeypatch):
    # a Dask worker compiled for another CPU ran other code: its chunk is refused, not merged
    case = _case("tanh", "simd_f32_fast", "forward")

    def elsewhere(job, oracle_kernel=None):
        result = sweep_chunk.run_chunk(job, oracle_kernel)
        return {**result, "machine_code": {**result["machine_code"], "compiled_for": ["haswell", ""]}}

    monkeypatch.setattr(exhaustive, "run_chunk", elsewhere)
    with pytest.raises(RuntimeError, match="compiled for haswell, not for this client's"):
        exhaustive.sweep(case, resolve("ours"), stride=4099 * 8, cache=Cache(None), chunk_points=1 << 12)


def test_the_scheduler_option_names_what_is_wrong(monkeypatch):
    with pytest.raises(executors.ClusterError, match="cannot reach the Dask scheduler"):
        executors.connect("tcp://127.0.0.1:9", timeout=2)
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)
    with pytest.raises(executors.ClusterError, match=r"pip install 'actbench-ulp\[dask\]'"):
        executors.connect("tcp://127.0.0.1:9")


def test_oracle_scan_sorts_points_into_decided_and_deferred():
    # one float32 result per situation the scan tells apart, against hand-made oracle values
    delta = oracle.delta_for(3)
    cases = [  # (got, oracle, expected: error or kind)
        (1.0, 1.0 + 2.0**-30, "ulp"),  # ordinary: 2**-30 / 2**-23 ... of the binade [1, 2)
        (np.nan, np.nan, "ulp"),  # a NaN that should be NaN: no error
        (np.nan, 0.5, "nan"),
        (np.inf, 3.0e38, "infinity"),
        (-0.0, 1e-50, "zero_sign"),
        (0.0, 2.0**-150, "deferred"),  # the oracle on the rounding edge to zero
        (1.0, 1.0 + 2.0**-24, "deferred"),  # exactly half an ULP: the oracle cannot say which side
        # the oracle 2.5 float64 ULP (of the exact value 1 + 2**-60) below 1: its own binade's ULP
        # is half, so e reads 2.0000000093 where the exact error is 1 - 2**-37; both readings
        # are kept, and they straddle 1 and 2 ULP
        (1.0 + 2.0**-23, 1.0 - 5 * 2.0**-53, "deferred"),
    ]
    got = np.array([c[0] for c in cases], np.float32)
    ref = np.array([c[1] for c in cases])
    counters, floats = oracle.tallies()
    top = np.full((oracle.TOP_ROWS, 4), -1.0)
    deferred, mism = np.empty((8, 4)), np.empty((8, 4))
    cands, scratch = np.empty((16, 4)), np.zeros(1)
    oracle.scan(0, 0, 1, got, ref, delta, 3, np.empty((2, got.size)), np.full(512, -1.0),
                np.zeros(oracle.HIST_BINS, np.int64), top, deferred, mism, cands, counters,
                floats, scratch, scratch.view(np.int64))
    c = dict(zip(oracle.COUNTERS, counters.tolist(), strict=True))
    assert (c["ok"], c["nan"], c["infinity"], c["zero_sign"], c["deferred"]) == (2, 1, 1, 1, 3)
    assert sorted(deferred[:3, 0].tolist()) == [5, 6, 7]
    assert top[0, 3] == pytest.approx(2.0**-7)  # 2**-30 in units of 2**-23


SAMPLED = 4099  # every 4099th bit pattern: 1,047,809 inputs per kernel, all binades, both signs


def test_every_float32_kernel_is_within_budget_on_every_4099th_input(tmp_path):
    # the sampled exhaustive domain of every elementwise kernel of ours that takes float32 (each
    # variant, both directions), gated by the budgets like any domain: CI fails when a kernel
    # leaves its budget anywhere in the float32 range.  The full sweep: --profile exhaustive
    selection = [c for c in catalog.cases() if c.activation.kind == "elementwise"
                 and c.takes("float32")]
    rows = audit_mod.run_audit(selection, ["float32"], ["exhaustive"], BUDGETS,
                               cache=Cache(tmp_path / "cache"), jobs=2, stride=SAMPLED)
    assert len(rows) == len(selection)
    failing = [f"{r['activation']}.{r['variant']}.{r['direction']}: {r['status']} "
               f"{r['max_ulp']:.4g} ULP at {r['worst_input']} {r['error']}"
               for r in rows if not r["passed"]]
    assert not failing, "\n".join(failing)
    for r in rows:
        assert r["n"] == len(range(0, 1 << 32, SAMPLED))
        assert r["sweep"]["nan_inputs"] == 4093  # the NaN patterns among the sampled ones
        assert r["sweep"]["oracle_violations"] == [] and r["mpmath_checked"] >= 1


def test_the_report_shows_each_sweeps_binades(tmp_path):
    from actbench_ulp.accuracy.table import to_frame
    from actbench_ulp.report import sweeps
    from actbench_ulp.report.document import Report

    case = _case("tanh", "simd_f32_fast", "forward")
    row = audit_mod.sweep_row(case, BUDGETS, resolve("ours"), stride=SPARSE, cache=Cache(None))
    df = to_frame([row]).astype(str)  # as resultset reads audit.csv: every column a string
    rep = Report("t")
    sweeps.add_section(rep, df)
    figures = rep.figures
    assert [f.slug for f in figures] == ["binades-tanh-forward"]
    maxima = sweeps.binade_maxima(df["sweep"][0])
    # the worst binade holds the row's maximum (to the oracle's bound: 2**-26 ULP)
    assert max(maxima[1][1].max(), maxima[-1][1].max()) == pytest.approx(row["max_ulp"], abs=2**-25)
    assert figures[0].draw().axes[0].get_title().startswith("tanh forward, float32")


def test_the_command_line_writes_the_sweep_as_an_audit_row(tmp_path):
    import io

    import pandas as pd

    from actbench_ulp.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = ["audit", "--activation", "relu", "--variant", "accurate", "--direction", "forward",
            "--dtype", "float32", "--domain", "exhaustive", "--sweep-stride", "65537", "--jobs", "1",
            "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    assert main(argv, out, err) == 0, err.getvalue()
    df = pd.read_csv(tmp_path / "out" / "audit.csv", keep_default_na=False)
    row = df.iloc[0]
    assert (row["domain"], row["n"], row["max_ulp"], row["passed"]) == ("exhaustive", 65536, 0.0, True)
    sweep = json.loads(row["sweep"])
    assert sweep["stride"] == 65537 and sweep["nan_inputs"] == 256  # relu: every NaN stays NaN
    meta = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert meta["filters"]["sweep_stride"] == 65537
    # the same command again reads every chunk back
    assert main(argv, io.StringIO(), io.StringIO()) == 0
    again = json.loads(pd.read_csv(tmp_path / "out" / "audit.csv", keep_default_na=False)["sweep"][0])
    assert again["resumed_chunks"] == again["chunks"] == 1
