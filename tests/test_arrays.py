"""A user's callable in another array library: detected, its inputs converted (and checked bit
for bit) and its results converted back; its derivative by the framework's autograd.

array-api-strict (a test dependency) exercises the machinery without torch or JAX; the torch
and JAX tests skip where those are not installed."""

import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actbench_ulp import cli
from actbench_ulp.accuracy import audit
from actbench_ulp.core import arrays
from actbench_ulp.core.budgets import load_budgets
from actbench_ulp.core.catalog import cases
from actbench_ulp.core.peers import UserImpl
from actbench_ulp.kernels import BFLOAT16

xp = pytest.importorskip("array_api_strict")
sys.path.insert(0, str(Path(__file__).parent))  # tests/arraykernels.py as a user's module
import arraykernels  # noqa: E402

BUDGETS = load_budgets()


def _case(activation, direction):
    return next(cases([activation], None, [direction]))


def _audit(impl, activation, direction, dtype, n=200):
    return audit.audit(_case(activation, direction), dtype, "core", BUDGETS, n=n, impl=impl)


def run(tmp_path, *argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["audit", "--out", str(tmp_path), "--no-cache", "--jobs", "1", "--domain", "core",
                     "--points", "200", *argv], out=out, err=err)
    df = pd.read_csv(tmp_path / "audit.csv", keep_default_na=False) if code != 2 else None
    return code, out.getvalue(), err.getvalue(), df


# ------------------------------------------------------------------ array-api-strict (CI)


def test_an_array_api_callable_is_detected_converted_and_audited(tmp_path):
    code, out, _, df = run(tmp_path, "--activation", "sigmoid", "--direction", "forward",
                           "--impl", "arraykernels:xp_sigmoid", "--impl", "arraykernels:np_sigmoid")
    # 1/(1+exp(-x)): exp, the sum and the quotient round, out of sigmoid's 1 ULP in both dtypes
    assert code == 1, out
    xp_rows = df[df["impl"] == "arraykernels:xp_sigmoid"].set_index("dtype")
    np_rows = df[df["impl"] == "arraykernels:np_sigmoid"].set_index("dtype")
    assert dict(xp_rows["status"]) == {"float32": "failed", "float64": "failed"}
    # array_api_strict computes with NumPy underneath: a lossless conversion both ways gives
    # the NumPy formula's figures to the last bit
    for col in ("max_ulp", "mean_ulp", "worst_input", "worst_output"):
        assert (xp_rows[col] == np_rows[col]).all(), col
    assert float(xp_rows.loc["float32", "max_ulp"]) > 1  # a real error, not a conversion artefact
    assert UserImpl("xp", arraykernels.xp_sigmoid)._forward.lib.name == "array_api_strict"


def test_a_dtype_the_library_lacks_is_an_error_row_naming_it():
    row = _audit(UserImpl("xp", arraykernels.xp_sigmoid), "sigmoid", "forward", "float16")
    assert row["status"] == "error" and not row["passed"]
    assert row["error"].startswith("ConversionError: array_api_strict cannot take the float16 input "
                                   "of xp_sigmoid: TypeError: The array_api_strict namespace does "
                                   "not support the dtype 'float16'")


class _FlipsOneBit(arrays.ArrayAPI):
    """A converter that loses one bit of one input: what the audit of the conversion is for."""

    def native(self, a):
        a = a.copy()
        a.view(f"u{a.itemsize}").flat[7] ^= 1
        return super().native(a)


class _LikeJaxWithoutX64(arrays.ArrayAPI):
    def native(self, a):
        return super().native(a.astype(np.float32) if a.dtype == np.float64 else a)


def test_a_lossy_conversion_is_caught_as_an_error_row():
    flips = UserImpl("flip", arraykernels.xp_sigmoid, library=_FlipsOneBit("array_api_strict"))
    row = _audit(flips, "sigmoid", "forward", "float32")
    assert row["status"] == "error" and not row["passed"] and np.isnan(row.get("max_ulp", np.nan))
    assert row["error"].startswith("ConversionError: the input xp_sigmoid would see in array_api_strict "
                                   "is not the audited input: 1 of 200 elements changed bits (first: ")
    narrows = UserImpl("narrow", arraykernels.xp_sigmoid, library=_LikeJaxWithoutX64("array_api_strict"))
    row = _audit(narrows, "sigmoid", "forward", "float64")
    assert row["status"] == "error" and row["error"].endswith("float64 became float32")


def test_a_callable_writing_into_its_zero_copy_input_is_restored_and_noted():
    x = np.linspace(-4, 4, 64, dtype=np.float32)
    kept = x.copy()
    row = audit.audit(_case("sigmoid", "forward"), "float32", "core", BUDGETS, x=x,
                      impl=UserImpl("w", arraykernels.xp_sigmoid_writing_its_input))
    assert np.array_equal(x, kept)  # the next implementation audits the same inputs
    assert row["warnings"] == ("RuntimeWarning: xp_sigmoid_writing_its_input wrote into its input; "
                               "the audit restored it")
    assert row["status"] == "failed" and row["max_ulp"] > 1  # measured all the same


def test_autograd_needs_a_differentiable_framework():
    for impl in (UserImpl("xp", arraykernels.xp_sigmoid, "autograd"),
                 UserImpl("np", arraykernels.np_sigmoid, "autograd")):
        row = _audit(impl, "sigmoid", "derivative", "float32")
        assert row["status"] == "error"
        assert "has no autograd: give the derivative as a function, or write the callable in torch or JAX" \
            in row["error"]


def test_library_options_are_checked(tmp_path):
    code, _, err, _ = run(tmp_path, "--activation", "sigmoid", "--impl", "arraykernels:xp_sigmoid",
                          "--impl-library", "no_such_library")
    assert code == 2 and "array library 'no_such_library' is not installed" in err
    code, _, err, _ = run(tmp_path, "--activation", "sigmoid", "--impl-library", "torch")
    assert code == 2 and "--impl-library goes with an --impl module:function" in err
    with pytest.raises(ValueError, match="give a callable or 'autograd'"):
        UserImpl("x", arraykernels.xp_sigmoid, "autograde")


def test_a_named_library_is_used_without_detection(tmp_path):
    code, _, _, df = run(tmp_path, "--activation", "sigmoid", "--direction", "forward", "--dtype",
                         "float64", "--impl", "arraykernels:xp_sigmoid", "--impl-library",
                         "array_api_strict")
    row = df[df["impl"] == "arraykernels:xp_sigmoid"].iloc[0]
    # measured, not an error: 1/(1+exp(-x)) is out of sigmoid's 1 ULP in float64 too
    assert code == 1 and row["status"] == "failed" and row["error"] == ""
    assert 1 < float(row["max_ulp"]) < 4


# ------------------------------------------------------------------ torch and JAX (optional)


def test_torch_gelu_shows_its_tail_error_instead_of_failing_on_numpy_input(tmp_path):
    pytest.importorskip("torch")
    code, _, _, df = run(tmp_path, "--activation", "gelu", "--dtype", "float32",
                         "--impl", "torch.nn.functional:gelu")
    fwd = df[df["direction"] == "forward"].iloc[0]
    assert code == 1 and fwd["status"] == "failed" and fwd["error"] == ""
    # torch's x·(1 + erf(x/√2))/2 flushes to 0 in the negative tail (1.7e7 ULP measured there)
    assert float(fwd["max_ulp"]) >= 1e6 and float.fromhex(fwd["worst_input"]) < -5
    assert (df[df["direction"] == "derivative"]["status"] == "absent").all()  # none was given


def test_torch_takes_and_returns_bfloat16_through_int16():
    torch = pytest.importorskip("torch")
    impl = UserImpl("sigmoid", torch.sigmoid)
    row = _audit(impl, "sigmoid", "forward", "bfloat16")
    # no conversion error; torch's bfloat16 sigmoid computes in float32 and rounds once
    assert row["status"] == "ok" and row["max_ulp"] <= 1, row["error"]
    x = np.linspace(-3, 3, 7).astype(BFLOAT16)
    assert np.array_equal(impl.kernel(_case("sigmoid", "forward"))(x).view(np.uint16),
                          torch.sigmoid(torch.tensor(x.astype(np.float32))).bfloat16()
                          .view(torch.int16).numpy().view(np.uint16))


def test_torch_autograd_matches_the_torch_peer_bit_for_bit(tmp_path):
    # the same torch expressions differentiated by the same autograd: the user's callable,
    # converted by actbench_ulp.core.arrays, must give the torch peer's figures exactly
    pytest.importorskip("torch")
    for activation, spec in (("reglu", "arraykernels:torch_reglu"),
                             ("softmax", "arraykernels:torch_softmax")):
        code, out, _, df = run(tmp_path, "--activation", activation, "--impl", "torch", "--impl", spec,
                               "--impl-derivative", "autograd")
        assert code in (0, 1), out
        peer = df[df["impl"] == "torch"].set_index(["direction", "dtype"])
        user = df[df["impl"] == spec].set_index(["direction", "dtype"])
        assert set(user.index.get_level_values(0)) == ({"forward", "d_a", "d_b"} if activation == "reglu"
                                                        else {"forward", "vjp"})
        assert (user["status"] != "error").all(), user["error"].tolist()
        for col in ("max_ulp", "worst_input", "worst_output"):
            assert (user.loc[peer.index, col] == peer[col]).all(), (activation, col)


def test_jax_float64_without_x64_is_an_error_row_naming_the_fix():
    jax = pytest.importorskip("jax")
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        row = _audit(UserImpl("jax.nn.gelu", jax.nn.gelu), "gelu", "forward", "float64")
        ok32 = _audit(UserImpl("jax.nn.gelu", jax.nn.gelu), "gelu", "forward", "float32")
    finally:
        jax.config.update("jax_enable_x64", before)
    assert row["status"] == "error" and not row["passed"]
    assert row["error"] == (
        "ConversionError: the input gelu would see in jax is not the audited input: float64 became "
        "float32; JAX runs with 64-bit floats disabled: enable them with "
        'jax.config.update("jax_enable_x64", True) or JAX_ENABLE_X64=1')
    assert ok32["status"] in ("ok", "failed") and np.isfinite(ok32["max_ulp"])  # float32 is measured


@pytest.fixture
def x64():
    jax = pytest.importorskip("jax")
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield jax
    jax.config.update("jax_enable_x64", before)


def test_jax_forward_then_autograd_through_one_callable(x64):
    # jax_reglu takes NumPy input (a * jax.nn.relu(b) is a jax.Array): tried first, NumPy must
    # not keep it, in the forward (a jax.Array result, float64 unchecked) or in d_a (no autograd)
    impl = UserImpl("jax_reglu", arraykernels.jax_reglu, "autograd")
    rows = [_audit(impl, "reglu", d, "float64") for d in ("forward", "d_a")]
    assert [r["error"] for r in rows] == ["", ""] and impl._forward.lib.name == "jax"
    # a·relu(b): one rounding; relu(b): exact
    assert rows[0]["status"] == "ok" and rows[0]["max_ulp"] <= 0.5 and rows[1]["max_ulp"] == 0.0


def test_a_callable_naming_no_framework_that_returns_framework_arrays_runs_in_that_framework(x64):
    pytest.importorskip("torch")
    x = np.linspace(-4, 4, 9)
    for fn, lib in ((arraykernels.jax_sigmoid_of_numpy, "jax"),
                    (arraykernels.torch_sigmoid_of_numpy, "torch")):
        call = UserImpl(fn.__name__, fn).kernel(_case("sigmoid", "forward"))
        y = call(x)
        assert type(y) is np.ndarray and y.dtype == np.float64 and call.lib.name == lib, fn
        native_call, natives = call.prepare(x)
        assert call.lib.owns(natives[0]) and call.lib.owns(native_call(*natives))
    # NumPy took the call, but JAX computed it: its input is checked, so float64 without x64 is
    # the error naming the fix, not float32 numbers measured as a wrong dtype
    x64.config.update("jax_enable_x64", False)
    row = _audit(UserImpl("s", arraykernels.jax_sigmoid_of_numpy), "sigmoid", "forward", "float64")
    assert row["status"] == "error" and "JAX runs with 64-bit floats disabled" in row["error"]


def test_prepare_checks_once_then_calls_the_function_itself_on_natives():
    torch = pytest.importorskip("torch")
    x = np.linspace(-3, 3, 11, dtype=np.float32)
    call, natives = UserImpl("s", torch.sigmoid).kernel(_case("sigmoid", "forward")).prepare(x)
    assert call is torch.sigmoid and natives[0].data_ptr() == x.ctypes.data  # zero-copy, unwrapped
    d = UserImpl("s", torch.sigmoid, "autograd").kernel(_case("sigmoid", "derivative"))
    grad, natives = d.prepare(x)
    s = torch.sigmoid(natives[0])
    assert torch.allclose(grad(*natives), s * (1 - s))
    with pytest.raises(arrays.ConversionError, match="cannot take the float16 input"):
        UserImpl("xp", arraykernels.xp_sigmoid).kernel(_case("sigmoid", "forward")).prepare(
            x.astype(np.float16))


def test_jax_autograd_of_reglu_is_exact_up_to_the_sign_of_zero():
    # d/da a·relu(b) = relu(b) and d/db = a·[b > 0]: exact in every dtype, so 0 ULP
    jax = pytest.importorskip("jax")
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        impl = UserImpl("jax_reglu", arraykernels.jax_reglu, "autograd")
        rows = [_audit(impl, "reglu", d, dt) for d in ("d_a", "d_b") for dt in ("float32", "float64")]
    finally:
        jax.config.update("jax_enable_x64", before)
    assert impl._forward.lib.name == "jax"  # found by trying: the module names no framework
    assert [(r["status"], r["max_ulp"]) for r in rows] == [("ok", 0.0)] * 2 + [("failed", 0.0)] * 2
    # but where a < 0 and b < 0 the exact a·0 is -0 and autograd's masked gradient gives +0
    # (torch's too): about a quarter of the 200 uniform (a, b) pairs
    for r in rows[2:]:
        assert r["worst_kind"] == "zero_sign" and 25 < r["special_mismatches"] < 75
