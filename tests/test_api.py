"""The Python API: ``actbench.audit`` and ``actbench_ulp.testing.assert_accurate`` on users'
functions, elementwise, gated and row-wise.

Few points and domains, float32 only: each test audits a few hundred points, whose exact
values the session's cache (tests/conftest.py) shares between the tests."""

import json

import numpy as np
import pytest
from scipy.special import erf, erfc, expit

import actbench_ulp as actbench
from actbench_ulp.accuracy.row import COLUMNS
from actbench_ulp.core.exact import Cache
from actbench_ulp.testing import assert_accurate

POINTS = 200
# a float64 formula rounded once to float32 is correctly rounded but for the float64 formula's
# own few-ULP error, ~2**-29 of a float32 ULP per float64 ULP: 0.5 ULP plus far less than 1e-6
ROUNDED_ONCE = 0.5 + 1e-6


def gelu64(x):
    x64 = x.astype(np.float64)
    y = 0.5 * x64 * erfc(-x64 / np.sqrt(2.0))
    return np.where(np.isneginf(x64), -0.0, y).astype(x.dtype)  # -inf·0 would be NaN


def d_gelu64(x):
    x64 = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        y = 0.5 * erfc(-x64 / np.sqrt(2.0)) + x64 * np.exp(-x64 * x64 / 2) / np.sqrt(2 * np.pi)
    # at ±inf the formula is NaN (±inf·0); far left the terms underflow to +0 where gelu' is -0
    y = np.where(np.isinf(x64), np.where(x64 > 0, 1.0, -0.0), y)
    return np.where((y == 0) & (x64 < 0), -0.0, y).astype(x.dtype)


def naive_gelu32(x):
    # the textbook form in float32: 1 + erf(x/√2) cancels to 0 below x ≈ -4
    return 0.5 * x * (1 + erf(x / np.float32(np.sqrt(2))))


def swiglu64(a, b):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64 * b64 * expit(b64)).astype(a.dtype)


def swiglu32(a, b):
    return a * (b / (1 + np.exp(-b)))


def _softmax64(x, temperature):
    z = x.astype(np.float64) / temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax64(x, temperature=1.0):
    return _softmax64(x, temperature).astype(x.dtype)


def softmax_vjp64(x, g, temperature=1.0):
    # y·(g - <g, y>)/tau: the difference cancels where g is nearly constant over the row's mass
    y, g64 = _softmax64(x, temperature), g.astype(np.float64)
    return (y * (g64 - (g64 * y).sum(axis=-1, keepdims=True)) / temperature).astype(x.dtype)


def test_a_correctly_rounded_gelu_passes_with_its_derivative():
    df = assert_accurate(gelu64, "gelu", dtype="float32", direction="all", derivative=d_gelu64,
                         domains=["special", "core"], points=POINTS)
    assert list(df.columns) == COLUMNS
    assert len(df) == 4 and df["passed"].all()
    assert set(df["impl"]) == {"tests.test_api:gelu64"}
    assert df["max_ulp"].max() <= ROUNDED_ONCE
    assert (df.loc[df["domain"] == "core", "n"] == POINTS).all()
    # the catalog's budgets of our accurate kernel: 1 ULP forward, 2 for the derivative
    assert dict(zip(df["direction"], df["budget_max_ulp"], strict=False)) == {
        "forward": 1.0, "derivative": 2.0}


def test_a_naive_float32_gelu_fails_naming_its_domain_and_worst_inputs():
    with pytest.raises(AssertionError) as failure:
        assert_accurate(naive_gelu32, "gelu", dtype="float32", domains=["special", "core"],
                        points=POINTS)
    message = str(failure.value)
    df = actbench.audit(naive_gelu32, "gelu", dtype="float32", domains=["special", "core"],
                        points=POINTS)
    core = df.set_index("domain").loc["core"]
    # where 1 + erf cancels, -0 stands for a normal float32: ~1.6e7 ULP (ULPs at the true value)
    assert core["max_ulp"] > 1e6 and core["worst_output"] == "-0.0"
    assert message.startswith("tests.test_api:naive_gelu32 fails 2 of 2 audited rows\n")
    assert "gelu forward float32:" in message
    assert f"core: max {core['max_ulp']:.4g} ULP > budget 1 (200 points" in message
    worst = json.loads(core["worst_points"])[0]
    assert f"x={worst['x']} got -0.0 want {worst['want']} ({worst['ulp']:.4g} ulp)" in message
    assert worst["x"].startswith("-0x1.")  # hex, to replay with float.fromhex
    # at -inf, -inf·(1 + erf(-inf)) = -inf·0 is NaN where gelu is -0
    assert "special: max" in message and "x=-inf got nan want -0.0 (nan mismatch)" in message


def test_a_result_of_the_wrong_dtype_fails_with_its_measured_error():
    def promoting_gelu(x):
        return gelu64(x).astype(np.float64)

    with pytest.raises(AssertionError) as failure:
        assert_accurate(promoting_gelu, "gelu", dtype="float32", domains=["core"], points=POINTS)
    # rounded once to float32 it is gelu64 itself: correctly rounded, failing only for its
    # dtype, so no point is listed
    assert str(failure.value).endswith(
        "core: max 0.4976 ULP <= budget 1 (200 points, 0 special-value mismatches); "
        "promoting_gelu returned float64 for float32 input; rounded to float32 and audited")


def test_max_ulp_overrides_every_budget():
    df = assert_accurate(naive_gelu32, "gelu", dtype="float32", domains=["core"], points=POINTS,
                         max_ulp=1e9)
    assert df["budget_max_ulp"].tolist() == [1e9] and df["budget_reason"].tolist() == ["set by the caller"]


def test_gated_functions_are_audited_on_pairs():
    df = assert_accurate(swiglu64, "swiglu", dtype=np.float32, domains=["core"], points=POINTS)
    assert df["dtype"].tolist() == ["float32"]
    assert df["max_ulp"].max() <= ROUNDED_ONCE
    with pytest.raises(AssertionError) as failure:
        assert_accurate(swiglu32, "swiglu", dtype="float32", domains=["core"], points=POINTS)
    # three float32 roundings (exp, the division, the product) reach 1.6 ULP on these points
    assert "swiglu forward float32:\n  core: max 1.6 ULP > budget 1" in str(failure.value)
    assert "    a=0x1." in str(failure.value) and " b=-0x1." in str(failure.value)


def test_rowwise_functions_are_audited_on_rows_with_their_temperature():
    df = actbench.audit(softmax64, "softmax", dtype="float32", direction="all",
                        derivative=softmax_vjp64, domains=["core"], points=POINTS)
    by_direction = df.set_index("direction")
    assert by_direction.loc["forward", "passed"]
    assert by_direction.loc["forward", "max_ulp"] <= ROUNDED_ONCE
    # the VJP's g - <g, y> cancels: thousands of ULP where a sharp temperature (0.001) leaves
    # one entry with all the mass, and +0 where the exact product is -0
    vjp = by_direction.loc["vjp"]
    assert not vjp["passed"] and vjp["max_ulp"] > 1000 and vjp["special_mismatches"] > 0
    assert "tau=0.001 row=[" in vjp["worst_input"]


def test_the_cache_is_the_command_lines(tmp_path, monkeypatch):
    from actbench_ulp import cli

    monkeypatch.setenv("ACTBENCH_CACHE", str(tmp_path / "cache"))
    code = cli.main(["audit", "--activation", "gelu", "--variant", "accurate", "--direction",
                     "forward", "--dtype", "float32", "--domain", "core", "--points", str(POINTS),
                     "--out", str(tmp_path / "out")])
    assert code == 0
    cache = Cache(tmp_path / "cache")
    actbench.audit(gelu64, "gelu", dtype="float32", domains=["core"], points=POINTS, cache=cache)
    assert (cache.hits, cache.misses) == (1, 0)  # one task: the core domain's 200 points
    # the default is the same directory, found through $ACTBENCH_CACHE at call time
    entries = sorted((tmp_path / "cache").rglob("*.npz"))
    actbench.audit(gelu64, "gelu", dtype="float32", domains=["core"], points=POINTS)
    assert sorted((tmp_path / "cache").rglob("*.npz")) == entries
    actbench.audit(gelu64, "gelu", dtype="float32", domains=["core"], points=POINTS, cache=None)
    assert sorted((tmp_path / "cache").rglob("*.npz")) == entries


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"activation": "gleu"}, "unknown activation 'gleu'; known: relu,"),
    ({"dtype": "float8"}, "unknown dtype 'float8'; known: float32, float64, float16, bfloat16"),
    ({"dtype": ["float32", "half"]}, "unknown dtype 'half'"),
    ({"direction": "backward"}, "unknown direction 'backward' of elementwise gelu; known: forward, "
                                "derivative"),
    ({"direction": "d_a"}, "unknown direction 'd_a' of elementwise gelu"),
    ({"dtype": np.int32}, "unknown dtype 'int32'"),
    ({"domains": "tails"}, "unknown domain 'tails'; known: special, thresholds, core"),
    ({"direction": "derivative"}, "direction 'derivative' audits a derivative: pass derivative="),
    ({"direction": "all"}, "direction 'derivative' audits a derivative: pass derivative="),
    ({"domains": ["exhaustive"], "dtype": "float64"},
     "the exhaustive domain needs dtype float32, float16, bfloat16"),
    ({"domains": ["exhaustive"], "sweep_stride": 0}, "sweep_stride must be a whole number"),
    ({"activation": "swiglu", "direction": "d_a", "derivative": swiglu64},
     "derivative= gives no kernel for direction 'd_a' of gated swiglu: give 'autograd'"),
    ({"activation": "softmax", "dtype": "float16"},
     "softmax (rowwise) is audited in float32, float64, not float16"),
    ({"points": 0}, "points must be a whole number of at least 1, got 0"),
    ({"budget": -1}, "budget must be a non-negative number of ULP, got -1"),
    ({"profile": "thorough"}, "unknown profile 'thorough'; known: quick, full, exhaustive"),
])
def test_bad_arguments_are_one_clear_error(kwargs, message):
    kwargs = {"activation": "gelu", "dtype": "float32", **kwargs}
    with pytest.raises(ValueError) as error:
        actbench.audit(gelu64, kwargs.pop("activation"), **kwargs)
    assert message in str(error.value)


def test_fn_must_be_callable():
    with pytest.raises(TypeError, match="fn must be callable, got str"):
        actbench.audit("gelu", "gelu", dtype="float32")
