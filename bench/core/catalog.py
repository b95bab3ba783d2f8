"""The catalog: every activation, once, with its kernels, reference, parameters, domains and
how each peer writes it.

Tests, the audit, timing, the peers and the report iterate over ``CATALOG``; nothing else
lists activations.  Adding a shipped elementwise activation touches three files: its kernels,
parameters and variants in ``kernels/_accurate.py`` (``PARAMS``, ``ELEMENTWISE``), its
reference in ``reference/elementwise.py``, one ``Activation`` row here (its ``core`` range, its
thresholds, its conventions and its peers' spellings; the README's "Add an activation", which a
test follows); ``budgets.toml`` only where a variant misses the targets.  An activation we do
not ship is declared instead (``declared.Declaration``).  The row types are in ``activation``.

Budgets are *not* here (they are data, in ``budgets.toml``), nor are the domains' point
generators (``domains.py``): a row only says what is specific to the activation.
"""

from dataclasses import replace

from actbench_ulp import kernels
from actbench_ulp.core.activation import (
    DIRECTIONS,
    DTYPES,
    KIND_DIRECTIONS,
    SIXTEEN_BIT,
    Activation,
    Case,
    Edge,
    Spelling,
    Variant,
)

__all__ = [
    "CATALOG",
    "DIRECTIONS",
    "DTYPES",
    "KIND_DIRECTIONS",
    "SIXTEEN_BIT",
    "Activation",
    "Case",
    "Edge",
    "Spelling",
    "Variant",
    "cases",
    "runs_for_peers",
]

# The default, accurate variant: float64 formulas written for float64 accuracy (see
# kernels/_accurate.py); float32 widens, evaluates them and rounds once.
_ACCURATE = ("float64 cancellation-free formulas, exp/expm1/log1p/erfc and quotients as "
             "double-doubles (kernels/_dd64.py), rounded once; float32: that result rounded")
_ACCURATE_DD = _ACCURATE + "; double-double argument for the ill-conditioned tail"


_SIMD = ("the accurate formulas in a float64 loop LLVM vectorizes: exp by Cody-Waite reduction "
         "and a fitted polynomial (reference/polyfit.py), 2**n from its bits, error_model='numpy'; "
         "float32 rounded once; threads for large arrays")


_SIMD_F32 = ("float32 arithmetic, 16 lanes a vector: exp as an error-free pair from a float32 "
             "fit (reference/polyfit.py), 1/(1+e) from vdivps corrected by its fused residual; "
             "within the float32 budgets without wider arithmetic; threads for large arrays")


_SIMD_F32_FAST = ("float32 arithmetic, 16 lanes a vector, speed first: one rounded exp and one "
                  "division, no correction steps; at the copy roofline within looser budgets "
                  "(bench/core/budgets.toml)")


_SIMD_F32_EXPM1 = ("float32 arithmetic, 8 to 16 lanes a vector (kernels/_simd32_expm1.py): exp as an "
                   "error-free pair, expm1 = (e - 1) + its error exactly, log1p(e) = 2·atanh(e/(2 + e)) "
                   "with the quotient a corrected pair, parameters as float32 pairs; within the "
                   "float32 budgets without wider arithmetic; parameters it does not cover (celu's "
                   "alpha <= 0, softplus's beta != 1) through the simd loop")


_SIMD_F32_GELU_TANH = ("float32 arithmetic, 8 to 16 lanes a vector (kernels/_simd32_gelu_tanh.py): "
                       "x·sigmoid(v) with v = c1·(x + k·x³) as a float32 pair, exp as an "
                       "error-free pair taking v's low part, 1/(1+e) corrected by its fused "
                       "residual; the derivative's root on a fitted patch")


_SIMD_F32_SOFTSIGN = ("float32 arithmetic, 16 lanes a vector: 1 + |x| as an exact pair (two-sum), "
                      "1/(1 + |x|) from vdivps corrected by its fused residual, x·(1/(1 + |x|)) "
                      "and its square corrected likewise; no wider arithmetic")


def _elementwise(name: str, method: str = _ACCURATE, simd_f32: str = _SIMD_F32) -> tuple:
    """An elementwise activation's variants: accurate (``method``), then those its kernels have
    (``kernels.ELEMENTWISE``; ``simd_f32``: that variant's description for this activation)."""
    def pair(suffix):
        return {"forward": getattr(kernels, f"{name}{suffix}"),
                "derivative": getattr(kernels, f"d_{name}{suffix}")}
    how = {"simd": (_SIMD, DTYPES), "simd_f32": (simd_f32, ("float32",)),
           "simd_f32_fast": (_SIMD_F32_FAST, ("float32",))}
    return (Variant("accurate", pair(""), method),
            *(Variant(v, pair(f"_{v}"), *how[v]) for v in kernels.ELEMENTWISE[name]))


def _gated(name: str, gate: str) -> tuple:
    def kinds(suffix):
        return {"forward": getattr(kernels, f"{name}{suffix}"),
                "d_a": getattr(kernels, f"d_{name}_a{suffix}"),
                "d_b": getattr(kernels, f"d_{name}_b{suffix}")}
    return (Variant("accurate", kinds(""), f"a·{gate}(b) with the accurate {gate}; the product "
                    "formed with a scaled gate where the gate alone would underflow"),
            Variant("fast", kinds("_fast"), f"a·{gate}(b) in one vectorized loop: float64 with "
                    f"the simd {gate}; float32 in float32 arithmetic, the forward products as "
                    "the gate's pair times a (or the exact pair a·b) rounded once, the partials "
                    "with the float32-arithmetic gates; threads for large arrays; the accurate "
                    "kernel's value where the "
                    "gate underflows, b is tiny or a partial product would leave the normal "
                    "range", DTYPES))


_ROWWISE_FAST = ("SIMD passes within each row (max, exp by Cody-Waite and a polynomial, a "
                 "reassociated sum, e·(1/S) corrected by its fused residual), gradients shifted by "
                 "g at the maximum; float32 computed in float64 and rounded once; threads across "
                 "rows; NaN, +inf and all -inf rows, rows spread beyond exp's normal range, and the "
                 "float64 VJPs (whose cancellation needs a double-double exp) through the accurate "
                 "kernel")


def _rowwise(name: str) -> tuple:
    ks = {"forward": getattr(kernels, name), "vjp": getattr(kernels, f"{name}_vjp")}
    fast = {"forward": getattr(kernels, f"{name}_fast"),
            "vjp": getattr(kernels, f"{name}_vjp_fast")}
    return (Variant("accurate", ks, "float64 max shift with double-double (x - max)/tau, "
                    "compensated sums and dot products; float32 rounded once"),
            Variant("fast", fast, _ROWWISE_FAST, DTYPES))


def _below(bound):
    return lambda y, x: y < bound


def _equals(value):
    return lambda y, x: y == value


def _is_zero(y, x):
    return y == 0


def _is_not_x(y, x):
    return y != x


def _is_x(y, x):
    return y == x


# Edges of every dtype, added to each activation's thresholds: where exp overflows, turns
# subnormal and underflows.  Every exp-based kernel crosses them, often in a different branch.
DTYPE_EDGES = (
    Edge({"float32": "0x1.62e430p+6", "float64": "0x1.62e42fefa39efp+9"},
         "RN(log(max)): exp(x) overflows just above"),
    Edge({"float32": "-0x1.5d58a0p+6", "float64": "-0x1.6232bdd7abcd2p+9"},
         "RN(log(smallest normal)): exp(x) is subnormal below"),
    Edge({"float32": "-0x1.9fe368p+6", "float64": "-0x1.74910d52d3052p+9"},
         "RN(log(smallest subnormal / 2)): exp(x) underflows to 0 below"),
)

# parameter values at which a peer's function exists (jax.nn's and torch's fix these)
_SELU = {"alpha": kernels.SELU_ALPHA, "scale": kernels.SELU_SCALE}
_BETA_1 = {"beta": 1.0}

_ZERO = Edge("0x0p+0", "branch on the sign of x")

_ROWS = [
    Activation("relu", _elementwise("relu"), (-10.0, 10.0), (_ZERO,),
               kinks="relu'(0) = 0; relu(-0) = +0",
               peers={"torch": "F.relu(x)", "jax": "nn.relu(x)",
                      "numpy-seed": {"forward": "seed.relu(x)", "derivative": "seed.d_relu(x)"}}),
    Activation("relu6", _elementwise("relu6"), (-10.0, 10.0),
               (_ZERO, Edge("0x1.8p+2", "x = 6: upper clamp")),
               kinks="relu6'(0) = relu6'(6) = 0 (torch hardtanh_backward); relu6(-0) = +0",
               peers={"torch": "F.relu6(x)", "jax": "nn.relu6(x)"}),
    Activation("hardtanh", _elementwise("hardtanh"), (-4.0, 4.0),
               (Edge("-0x1p+0", "x = min_val"), Edge("0x1p+0", "x = max_val")),
               kinks="hardtanh'(min_val) = hardtanh'(max_val) = 0",
               peers={"torch": "F.hardtanh(x, min_val, max_val)",
                      "jax": Spelling("nn.hard_tanh(x)", only={"min_val": -1.0, "max_val": 1.0})}),
    Activation("leaky_relu", _elementwise("leaky_relu"), (-10.0, 10.0), (_ZERO,),
               kinks="leaky_relu'(0) = negative_slope",
               peers={"torch": "F.leaky_relu(x, negative_slope)",
                      "jax": "nn.leaky_relu(x, negative_slope)",
                      "numpy-seed": "seed.leaky_relu(x, negative_slope)"}),
    Activation("elu", _elementwise("elu", simd_f32=_SIMD_F32_EXPM1), (-20.0, 10.0), (
        _ZERO,
        Edge({"float32": "-0x1.154246p+4", "float64": "-0x1.2b708872320e2p+5"},
             "largest x where elu(x) == -1 (expm1 saturates)", _equals(-1)),
    ), kinks="elu'(0) = alpha (the x <= 0 branch)",
               peers={"torch": "F.elu(x, alpha)", "jax": "nn.elu(x, alpha)"}),
    Activation("celu", _elementwise("celu", simd_f32=_SIMD_F32_EXPM1), (-20.0, 10.0),
               (_ZERO,), kinks="celu'(0) = 1",
               peers={"torch": "F.celu(x, alpha)", "jax": "nn.celu(x, alpha)"}),
    Activation("selu", _elementwise("selu", simd_f32=_SIMD_F32_EXPM1), (-20.0, 10.0), (_ZERO,),
               kinks="selu'(0) = scale·alpha (the x <= 0 branch)",
               peers={"torch": Spelling("F.selu(x)", only=_SELU), "jax": Spelling("nn.selu(x)", only=_SELU)}),
    Activation("sigmoid", _elementwise("sigmoid"), (-20.0, 20.0), (
        _ZERO,
        Edge({"float32": "0x1.154244p+4", "float64": "0x1.2b708872320e1p+5"},
             "largest x where sigmoid(x) != 1", _below(1)),
        Edge({"float32": "-0x1.9fe36ap+6", "float64": "-0x1.74910d52d3052p+9"},
             "largest x where sigmoid(x) rounds to 0", _is_zero),
    ), peers={"torch": "torch.sigmoid(x)", "jax": "nn.sigmoid(x)", "scipy": "special.expit(x)",
                      "numpy-seed": {"forward": "seed.sigmoid(x)",
                                     "derivative": "seed.d_sigmoid(x)"}}),
    Activation("log_sigmoid", _elementwise("log_sigmoid", simd_f32=_SIMD_F32_EXPM1),
               (-20.0, 20.0), (
        _ZERO,
        Edge({"float32": "-0x1.d1cb80p+3", "float64": "-0x1.0a2b23f3bab74p+5"},
             "largest x where log_sigmoid(x) == x (log1p(exp(x)) < ulp(x)/2 below)", _is_x),
    ), peers={"torch": "F.logsigmoid(x)", "jax": "nn.log_sigmoid(x)",
                      "scipy": "special.log_expit(x)"}),
    Activation("tanh", _elementwise("tanh"), (-10.0, 10.0), (
        _ZERO,
        Edge({"float32": "0x1.205966p+3", "float64": "0x1.30fc1931f09c9p+4"},
             "largest x where tanh(x) != 1", _below(1)),
    ), peers={"torch": "torch.tanh(x)", "jax": "nn.tanh(x)",
                      "numpy-seed": {"forward": "seed.tanh(x)", "derivative": "seed.d_tanh(x)"}}),
    Activation("softsign", _elementwise("softsign", simd_f32=_SIMD_F32_SOFTSIGN),
               (-10.0, 10.0), (_ZERO,),
               peers={"torch": "F.softsign(x)", "jax": "nn.soft_sign(x)"}),
    Activation("softplus", _elementwise("softplus", simd_f32=_SIMD_F32_EXPM1), (-20.0, 20.0), (
        _ZERO,
        Edge({"float32": "0x1.d1cb7ep+3", "float64": "0x1.0a2b23f3bab73p+5"},
             "largest x where softplus(x) != x", _is_not_x),
    ), peers={"torch": "F.softplus(x, beta)", "jax": Spelling("nn.softplus(x)", only=_BETA_1),
                      "scipy": Spelling("special.softplus(x)", only=_BETA_1),
                      "numpy-seed": Spelling("seed.softplus(x)", only=_BETA_1)}),
    Activation("hardsigmoid", _elementwise("hardsigmoid"), (-6.0, 6.0),
               (Edge("-0x1.8p+1", "x = -3: lower clamp"), Edge("0x1.8p+1", "x = 3: upper clamp")),
               kinks="hardsigmoid'(±3) = 0",
               peers={"torch": "F.hardsigmoid(x)", "jax": "nn.hard_sigmoid(x)"}),
    Activation("hardswish", _elementwise("hardswish"), (-6.0, 6.0), (
        Edge("-0x1.8p+1", "x = -3: lower branch"),
        Edge("-0x1.8p+0", "x = -1.5: root of hardswish'"),
        Edge("0x1.8p+1", "x = 3: upper branch"),
    ), kinks="hardswish'(-3) = -1/2, hardswish'(3) = 3/2 (torch: x/3 + 1/2 on [-3, 3])",
               peers={"torch": "F.hardswish(x)", "jax": "nn.hard_swish(x)"}),
    Activation("gelu", _elementwise("gelu", _ACCURATE_DD), (-10.0, 10.0), (
        _ZERO,
        Edge("-0x1.38p+5", "x = -39: kernel returns -0 below"),
        Edge("-0x1.4p+5", "x = -40: gelu' returns -0 below; geglu's gate takes the asymptotic series"),
        Edge("0x1.4p+5", "x = 40: kernel returns x above"),
        Edge({"float32": "-0x1.cb64eap+3", "float64": "-0x1.34a4208ec1ea4p+5"},
             "largest x where gelu(x) rounds to -0", _is_zero),
        Edge({"float32": "0x1.563db0p+2", "float64": "0x1.06ce5350d65d9p+3"},
             "largest x where gelu(x) != x", _is_not_x),
    ), peers={"torch": "F.gelu(x)", "jax": "nn.gelu(x, approximate=False)",
                      "scipy": "x * special.ndtr(x)",
                      # the notebook's gelu is the tanh form: audited here, it shows that error
                      "numpy-seed": {"forward": "seed.gelu(x)",
                                     "derivative": "seed.finite_diff(seed.gelu, x)"}}),
    Activation("gelu_tanh", _elementwise("gelu_tanh", _ACCURATE_DD,
                                         simd_f32=_SIMD_F32_GELU_TANH), (-10.0, 10.0), (
        _ZERO,
        Edge("-0x1.9p+4", "x = -25: kernel returns -0 below"),
        Edge("0x1.4p+4", "x = 20: kernel returns x above"),
        Edge({"float32": "-0x1.58aaf4p+3", "float64": "-0x1.58c0d225444bcp+4"},
             "largest x where gelu_tanh(x) rounds to -0", _is_zero),
        Edge({"float32": "0x1.3f9ff0p+2", "float64": "0x1.c8b3114a76663p+2"},
             "largest x where gelu_tanh(x) != x", _is_not_x),
    ), peers={"torch": "F.gelu(x, approximate='tanh')", "jax": "nn.gelu(x, approximate=True)",
                      "numpy-seed": {"forward": "seed.gelu(x)",
                                     "derivative": "seed.finite_diff(seed.gelu, x)"}}),
    Activation("silu", _elementwise("silu"), (-20.0, 20.0), (
        _ZERO,
        Edge("-0x1.5ep+9", "x = -700: kernel forms x·exp(x) as (x·h)·h below"),
        Edge({"float32": "-0x1.b2a428p+6", "float64": "-0x1.77e0b87f54f95p+9"},
             "largest x where silu(x) rounds to -0", _is_zero),
        Edge({"float32": "0x1.0ad4e0p+4", "float64": "0x1.2707933a2e082p+5"},
             "largest x where silu(x) != x", _is_not_x),
    ), peers={"torch": "F.silu(x)", "jax": "nn.silu(x)", "scipy": "x * special.expit(x)",
                      "numpy-seed": {"forward": "seed.silu(x)",
                                     "derivative": "seed.finite_diff(seed.silu, x)"}}),
    Activation("mish", _elementwise("mish"), (-20.0, 20.0), (
        _ZERO,
        Edge("-0x1.9p+5", "x = -50: kernel switches to x·exp(x)"),
        Edge("0x1.4p+4", "x = 20: kernel returns x above"),
        Edge("0x1.4p+5", "x = 40: derivative kernel returns 1 above"),
        Edge({"float32": "-0x1.b2a428p+6", "float64": "-0x1.77e0b87f54f95p+9"},
             "largest x where mish(x) rounds to -0", _is_zero),
        Edge({"float32": "0x1.169b8cp+3", "float64": "0x1.2cba518c1155bp+4"},
             "largest x where mish(x) != x", _is_not_x),
    ), peers={"torch": "F.mish(x)", "jax": "nn.mish(x)",
                      "numpy-seed": {"forward": "seed.mish(x)",
                                     "derivative": "seed.finite_diff(seed.mish, x)"}}),
    # gated: content a, gate b; the thresholds domain uses the gate's edges for b
    Activation("glu", _gated("glu", "sigmoid"), (-10.0, 10.0), kind="gated",
               gate="sigmoid",
               peers={"torch": "F.glu(torch.cat([a, b], dim=-1), dim=-1)",
                      "jax": "nn.glu(jnp.concatenate([a, b], axis=-1), axis=-1)",
                      "scipy": "a * special.expit(b)",
                      "numpy-seed": {"forward": "a * seed.sigmoid(b)", "d_a": "seed.sigmoid(b)"}}),
    Activation("geglu", _gated("geglu", "gelu"), (-10.0, 10.0), kind="gated",
               gate="gelu",
               peers={"torch": "a * F.gelu(b)", "jax": "a * nn.gelu(b, approximate=False)",
                      "scipy": "a * (b * special.ndtr(b))",
                      "numpy-seed": {"forward": "a * seed.gelu(b)", "d_a": "seed.gelu(b)"}}),
    Activation("swiglu", _gated("swiglu", "silu"), (-20.0, 20.0), kind="gated",
               gate="silu",
               peers={"torch": "a * F.silu(b)", "jax": "a * nn.silu(b)",
                      "scipy": "a * (b * special.expit(b))",
                      "numpy-seed": {"forward": "a * seed.silu(b)", "d_a": "seed.silu(b)"}}),
    Activation("reglu", _gated("reglu", "relu"), (-10.0, 10.0), kind="gated",
               gate="relu", kinks="d/db at b = 0 is 0 (relu'(0) = 0)",
               peers={"torch": "a * F.relu(b)", "jax": "a * nn.relu(b)"}),
    # row-wise along an axis, with a temperature: softmax(x/tau)
    Activation("softmax", _rowwise("softmax"), (-10.0, 10.0), kind="rowwise",
               kinks="NaN row -> NaN; +inf entries share the mass; all -inf row -> 0, zero gradient",
               peers={"torch": "F.softmax(x / temperature, dim=-1)",
                      "jax": "nn.softmax(x / temperature, axis=-1)",
                      "scipy": "special.softmax(x / temperature, axis=-1)",
                      "numpy-seed": "seed.softmax(x / temperature)"}),
    Activation("log_softmax", _rowwise("log_softmax"), (-10.0, 10.0), kind="rowwise",
               kinks="NaN row -> NaN; +inf entries -> -log k, others -inf; all -inf row -> -inf, "
               "zero gradient",
               peers={"torch": "F.log_softmax(x / temperature, dim=-1)",
                      "jax": "nn.log_softmax(x / temperature, axis=-1)",
                      "scipy": "special.log_softmax(x / temperature, axis=-1)"}),
]
# an elementwise activation's parameters and defaults are its kernels' (``kernels.PARAMS``),
# written once there
CATALOG = {a.name: replace(a, params=dict(kernels.PARAMS.get(a.name, {})))
           if a.kind == "elementwise" else a for a in _ROWS}


def runs_for_peers(case, selection) -> bool:
    """Whether a peer (numpy-seed, scipy, torch, a user's function) runs on ``case``: it has one
    function per activation and direction, whatever our variants, so it runs with the first
    of the activation's variants in ``selection`` only."""
    first = next(c.variant.name for c in selection if c.activation.name == case.activation.name)
    return case.variant.name == first


def cases(activations=None, variants=None, directions=None):
    """Every (activation, variant, direction) in catalog order, optionally filtered."""
    for act in CATALOG.values():
        if activations and act.name not in activations:
            continue
        for variant in act.variants:
            if variants and variant.name not in variants:
                continue
            for direction in act.directions:
                if directions and direction not in directions:
                    continue
                yield Case(act, variant, direction)


def _load_declared() -> None:
    # after CATALOG exists: installed packages' declarations register into it
    from actbench_ulp.core import declared

    declared.load_installed()


_load_declared()
