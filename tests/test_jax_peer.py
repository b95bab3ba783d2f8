"""JAX as a built-in peer (``--impl jax``): jax.nn under its own names mapped honestly onto
ours, derivatives by jax.grad and jax.vjp, float64 under x64, the audit's and the bench's rows,
and the message when jax is not installed."""

import dataclasses
import io
import json
import math
import subprocess
import sys

import ml_dtypes
import numpy as np
import pandas as pd
import pytest
from scipy import special

from actbench_ulp import cli
from actbench_ulp.accuracy import audit
from actbench_ulp.core import catalog, peers
from actbench_ulp.core.budgets import load_budgets
from actbench_ulp.speed.timing import speed_table


@pytest.fixture(scope="module")
def jax_peer():
    pytest.importorskip("jax", reason="jax not installed (pip install -e '.[jax]')")
    return peers.resolve("jax")


def case(activation, direction="forward", **params):
    act = catalog.CATALOG[activation]
    if params:
        act = dataclasses.replace(act, params={**act.params, **params})
    return catalog.Case(act, act.variants[0], direction)


X64 = np.linspace(-6.0, 6.0, 2001)


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def test_gelu_is_the_erf_form_and_gelu_tanh_the_tanh_form(jax_peer):
    erf_form = X64 * special.ndtr(X64)
    gelu = jax_peer.kernel(case("gelu"))(X64)
    gelu_tanh = jax_peer.kernel(case("gelu_tanh"))(X64)
    # the two forms differ by up to ~5e-4 on [-6, 6]: each result is within float64 rounding
    # noise (1e-12 absolute, far below that gap) of its own form only
    assert np.max(np.abs(_gelu_tanh(X64) - erf_form)) > 1e-4
    assert np.max(np.abs(gelu - erf_form)) < 1e-12
    assert np.max(np.abs(gelu_tanh - _gelu_tanh(X64))) < 1e-12


def test_parameters_jax_nn_fixes_are_absent_elsewhere(jax_peer):
    assert jax_peer.kernel(case("softplus")) is not None
    assert jax_peer.kernel(case("softplus", beta=2.0)) is None  # jax.nn.softplus has no beta
    assert jax_peer.kernel(case("hardtanh", max_val=2.0)) is None
    assert jax_peer.kernel(case("selu", alpha=1.5)) is None
    slope = jax_peer.kernel(case("leaky_relu", negative_slope=0.2))(np.array([-1.0, 2.0]))
    assert slope.tolist() == [-0.2, 2.0]  # a parameter jax.nn takes is passed through
    # at the catalog's own parameters they are jax's: rows, not absent; selu's float64 row within
    # a couple of ULP shows jax.nn.selu's constants are the catalog's SELU_ALPHA and SELU_SCALE
    rows = {name: audit.audit(case(name), "float64", "core", load_budgets(), n=100, impl=jax_peer)
            for name in ("selu", "softplus", "hardtanh")}
    assert all(row["status"] != "absent" and row["max_ulp"] < 4 for row in rows.values()), rows


def test_jax_float32_flushes_subnormal_results_and_inputs_to_zero(jax_peer):
    """XLA's CPU float32 code runs with subnormals flushed: sigmoid(-100) (3.7e-44, 26.5
    subnormal steps) comes out 0, and silu(±1e-40) comes out ±0 instead of about ±5e-41
    (35,681 steps); float64 keeps them.  Ours, on the same inputs, is within half an ULP."""
    x = np.array([-100.0, -103.0], np.float32)  # sigmoid 3.7e-44 and 1.9e-45
    sig = audit.audit(case("sigmoid"), "float32", "core", load_budgets(), x=x, impl=jax_peer)
    assert sig["worst_output"] == "0.0" and sig["worst_input"] == "-0x1.9p+6"  # -100
    assert 26 < sig["max_ulp"] < 27  # all of sigmoid(-100) = 3.72e-44: 26.5 subnormal steps
    tiny = np.array([1e-40, -1e-40], np.float32)
    silu = audit.audit(case("silu"), "float32", "core", load_budgets(), x=tiny, impl=jax_peer)
    assert silu["worst_output"] in ("0.0", "-0.0") and 35_600 < silu["max_ulp"] < 35_700
    for row in (sig, silu):
        assert row["passed"] is False  # far outside the budget of 1
    ours = audit.audit(case("silu"), "float32", "core", load_budgets(), x=tiny)
    assert ours["max_ulp"] <= 0.5
    wide = jax_peer.kernel(case("sigmoid"))(x.astype(np.float64))
    assert (wide > 0).all()  # float64 is not flushed


def test_float64_is_kept_without_turning_x64_on_globally(jax_peer):
    import jax

    y = jax_peer.kernel(case("sigmoid"))(X64)
    assert y.dtype == np.float64
    # float32 would be off by ~1e-8; float64 agrees with SciPy's expit to rounding
    assert np.max(np.abs(y - special.expit(X64))) < 1e-15
    assert not jax.config.jax_enable_x64


def test_an_elementwise_derivative_from_jax_grad(jax_peer):
    s = special.expit(X64)
    d = jax_peer.kernel(case("sigmoid", "derivative"))(X64)
    assert d.dtype == np.float64 and np.max(np.abs(d - s * (1 - s))) < 1e-15
    d32 = jax_peer.kernel(case("tanh", "derivative"))(X64.astype(np.float32))
    # float32: a few float32 ULPs of a value at most 1 (eps32 = 1.2e-7)
    assert d32.dtype == np.float32 and np.max(np.abs(d32 - (1 - np.tanh(X64) ** 2))) < 1e-6


def test_gated_forward_and_both_gradients(jax_peer):
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-4, 4, 300), rng.uniform(-4, 4, 300)
    gate = special.expit(b)
    want = {"forward": a * gate, "d_a": gate, "d_b": a * gate * (1 - gate)}
    for direction, expected in want.items():
        got = jax_peer.kernel(case("glu", direction))(a, b)
        assert np.max(np.abs(got - expected)) < 1e-14, direction
    silu_b = b * gate
    got = jax_peer.kernel(case("swiglu", "d_a"))(a, b)
    assert np.max(np.abs(got - silu_b)) < 1e-14


def test_rowwise_softmax_and_its_vjp_with_temperature(jax_peer):
    rng = np.random.default_rng(1)
    x, g, tau = rng.uniform(-5, 5, (3, 40)), rng.uniform(-1, 1, (3, 40)), 0.5
    y = special.softmax(x / tau, axis=-1)
    got = jax_peer.kernel(case("softmax"))(x, temperature=tau)
    assert np.max(np.abs(got - y)) < 1e-15
    vjp = jax_peer.kernel(case("softmax", "vjp"))(x, g, temperature=tau)
    want = y * (g - np.sum(g * y, axis=-1, keepdims=True)) / tau
    assert np.max(np.abs(vjp - want)) < 1e-14
    log = jax_peer.kernel(case("log_softmax"))(x, temperature=tau)
    assert np.max(np.abs(log - special.log_softmax(x / tau, axis=-1))) < 1e-13


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_sixteen_bit_dtypes_go_through(jax_peer, dtype):
    x = np.linspace(-4, 4, 101).astype(dtype)
    for direction in ("forward", "derivative"):
        y = jax_peer.kernel(case("silu", direction))(x)
        assert y.dtype == np.dtype(dtype) and np.isfinite(y.astype(np.float32)).all()


def test_audit_rows_for_jax(jax_peer, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["audit", "--impl", "jax", "--activation", "gelu,silu,softmax", "--dtype",
                     "float32,float64", "--domain", "core", "--points", "200", "--jobs", "1",
                     "--out", str(tmp_path)], out=out, err=err)
    df = pd.read_csv(tmp_path / "audit.csv", keep_default_na=False)
    # 1: rows over their budgets (jax.nn's gelu and softmax are), but every one measured
    assert code == 1 and (df["status"] != "error").all(), (out.getvalue(), err.getvalue())
    assert set(df["impl"]) == {"jax"}
    # 2 elementwise activations × 2 directions + softmax's forward and vjp, × 2 dtypes
    assert len(df) == 3 * 2 * 2 and (df["status"] != "absent").all()
    gelu = df[(df["activation"] == "gelu") & (df["direction"] == "forward")].set_index("dtype")
    # the erf form: within a few hundred ULP (97 in float64 measured); the tanh form would be
    # ~5e-4 relative off, 1e3 ULP in float32 and 1e12 in float64
    assert float(gelu.loc["float64", "max_ulp"]) < 1e3
    assert float(gelu.loc["float32", "max_ulp"]) < 1e3
    assert "[jax]" in out.getvalue()


def test_missing_jax_is_skipped_with_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # `import jax` raises ImportError
    with pytest.raises(peers.PeerUnavailable,
                       match=r"pip install 'actbench-ulp\[jax\]'.*pip install -e '\.\[jax\]'"):
        peers.resolve("jax")
    err = io.StringIO()
    code = cli.main(["audit", "--impl", "ours,jax", "--activation", "relu", "--domain", "special",
                     "--no-cache", "--out", str(tmp_path)], out=io.StringIO(), err=err)
    df = pd.read_csv(tmp_path / "audit.csv", keep_default_na=False)
    assert code == 0 and "jax is not installed" in err.getvalue() and set(df["impl"]) == {"ours"}


def test_speedup_vs_jax_is_taken_within_the_run():
    def bench(impl, median):
        return {"extra_info": {"impl": impl, "activation": "gelu", "variant": "-",
                               "direction": "forward", "kind": "elementwise", "dtype": "float32",
                               "size": 1000, "bytes": 8000, "threads": 1, "first_call_s": 0.1,
                               "max_ulp": 0.5},
                "stats": {"median": median, "iqr": 0.1 * median, "rounds": 5}}

    t = speed_table({"benchmarks": [bench("ours", 4e-6), bench("jax", 6e-6)]}).set_index("impl")
    assert t.loc["ours", "speedup_vs_jax"] == pytest.approx(1.5)  # jax's 6 µs over our 4 µs
    assert t.loc["jax", "speedup_vs_jax"] == pytest.approx(1.0)


def test_bench_pins_xla_threads(tmp_path, monkeypatch):
    seen = {}

    def fake_run(cmd, env=None, **kwargs):
        if cmd[0] == "git":  # the run's metadata reads the checkout's state
            return subprocess.CompletedProcess(cmd, 1, "", "")
        seen.update(env)
        return subprocess.CompletedProcess(cmd, 1, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    cli.main(["bench", "--activation", "relu", "--threads", "2", "--out", str(tmp_path)],
             out=io.StringIO(), err=io.StringIO())
    # XLA sizes its CPU thread pools from PJRT_NPROC (xla::DefaultThreadPoolSize)
    assert seen["PJRT_NPROC"] == "2" and seen["NUMBA_NUM_THREADS"] == "2"


def test_bench_times_jax_beside_ours(jax_peer, tmp_path):
    out = io.StringIO()
    code = cli.main(["bench", "--impl", "ours,jax", "--activation", "sigmoid", "--direction",
                     "forward", "--variant", "accurate", "--size", "1000", "--dtype", "float32",
                     "--rounds", "2", "--max-time", "0.001", "--out", str(tmp_path)],
                    out=out, err=io.StringIO())
    assert code == 0, out.getvalue()
    table = pd.read_csv(tmp_path / "speed.csv").set_index("impl")
    assert {"ours", "jax", "np.copyto"} == set(table.index)
    # measured, not asserted: a ratio of two positive times from the same run
    assert table.loc["ours", "speedup_vs_jax"] > 0 and table.loc["jax", "ns_per_element"] > 0
    assert "speedup_vs_jax" in out.getvalue()
    raw = json.loads((tmp_path / "speed-raw.json").read_text())
    jax_run = next(b for b in raw["benchmarks"] if b["extra_info"]["impl"] == "jax")
    assert jax_run["extra_info"]["first_call_s"] > 0  # the compile, kept out of the rounds
    # the suite timed jax in its own process; the metadata names it all the same
    assert json.loads((tmp_path / "speed.json").read_text())["peers"]["jax"]["platform"] == "cpu"
