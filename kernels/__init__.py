"""Numba-compiled activation kernels: ``kernels.gelu(x)``, ``kernels.d_gelu(x)``, ...

Each kernel takes a float32 or float64 array of any shape (or a scalar of those dtypes; the
``*_simd_f32`` and ``*_simd_f32_fast`` variants take float32 only) and returns an array of the
same dtype and shape; ``out=`` writes into a preallocated array.
Parameters use PyTorch's names and defaults and are keyword-only:
``kernels.leaky_relu(x, negative_slope=0.2)``.  ``d_<name>`` is dy/dx.

The elementwise kernels also take float16 and bfloat16 (ml_dtypes): computed in float64 and
rounded once to the 16-bit format.  An empty array gives an empty array of the same dtype (as
NumPy ufuncs and PyTorch do); integer or complex input, or a 16-bit float for the gated and
row-wise kernels, raises ``TypeError`` rather than being silently promoted.

Compiled code is cached on disk in a directory keyed by every kernel source file, the
Numba/llvmlite versions and the CPU (``_cache``); ``compile_stats()`` says how long this
process spent compiling and how much it loaded from that cache.
"""

import numpy as np

from . import (
    _accurate,
    _gated_fast,
    _rowwise,
    _rowwise_fast,
    _rowwise_short,
    _simd,
    _simd32,
    _simd32_expm1,
    _simd32_gelu_tanh,
)
from ._accurate import ELEMENTWISE, PARAMS, SELU_ALPHA, SELU_SCALE  # each activation, once
from ._cache import stats as compile_stats
from ._narrow import BFLOAT16, FLOAT16, round_once
from ._ufunc import deliver

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
NARROW_DTYPES = (FLOAT16, BFLOAT16)  # elementwise kernels only: computed in float64, rounded once


class Kernel:
    """A named elementwise kernel: validates dtypes and parameters, then calls its ufunc."""

    def __init__(self, name, ufunc, **defaults):
        self.__name__ = self.name = name
        self.ufunc = ufunc
        self.defaults = dict(defaults)

    def __repr__(self):
        params = "".join(f", {k}={v!r}" for k, v in self.defaults.items())
        return f"<kernel {self.name}(x{params})>"

    def __call__(self, x, *, out=None, **params):
        given = _params(self.name, self.defaults, params)
        x = _as_float_array(x, self.name, NARROW_DTYPES)
        _check_out(self.name, out, x)
        values = [np.float64(given[k]) for k in self.defaults]
        # NaN and infinities are handled deliberately inside the kernels; the flags their
        # comparisons raise are not errors of the caller's.
        with np.errstate(all="ignore"):
            if x.dtype in NARROW_DTYPES:
                y = round_once(self.ufunc(x.astype(np.float64), *values), x.dtype)
                if out is None:
                    return y
                out[...] = y
                return out
            return self.ufunc(x, *values, out=out)


class SimdKernel:
    """An elementwise kernel of ``_simd``: a vectorized float64 loop (float32 rounded once),
    on Numba's threads for large arrays; shapes and ``out=`` as ``Kernel`` (an ``out`` that
    overlaps ``x`` is handled as NumPy does), float32 and float64 only, scalar parameters."""

    suffix = "_simd"
    dtypes = SUPPORTED_DTYPES

    def __init__(self, name, **defaults):
        self.name = name
        self.__name__ = f"{name}{self.suffix}"
        self.defaults = dict(defaults)

    def __repr__(self):
        params = "".join(f", {k}={v!r}" for k, v in self.defaults.items())
        kinds = "/".join(d.name for d in self.dtypes)
        return f"<simd kernel {self.__name__}(x{params}), {kinds}>"

    def _input(self, x):
        return _as_float_array(x, self.__name__)

    def _run(self, flat, y, values):
        _simd.run(self.name, (flat,), y, dict(zip(self.defaults, values, strict=True)))

    def __call__(self, x, *, out=None, **params):
        given = _params(self.__name__, self.defaults, params)
        if any(np.ndim(given[k]) for k in self.defaults):
            raise TypeError(f"{self.__name__}: parameters must be scalars (the accurate kernel "
                            f"{self.name} broadcasts arrays)")
        values = [float(given[k]) for k in self.defaults]
        x = self._input(x)
        _check_out(self.__name__, out, x)
        if out is not None and not out.flags.writeable:
            raise ValueError(f"{self.__name__}: out is read-only")
        flat = np.ascontiguousarray(x).reshape(-1)
        # straight into out, unless it overlaps the input other than element for element
        in_place = out is not None and out.ctypes.data == flat.ctypes.data
        direct = (out is not None and out.flags.c_contiguous
                  and (in_place or not np.may_share_memory(out, flat)))
        y = out.reshape(-1) if direct else np.empty(flat.shape, x.dtype)
        self._run(flat, y, values)
        return deliver(y, out, direct, x.shape)


class Simd32Kernel(SimdKernel):
    """An elementwise kernel of ``_simd32``: a vectorized loop in float32 arithmetic (16 lanes),
    float32 input only; otherwise as ``SimdKernel``."""

    suffix = "_simd_f32"
    dtypes = (np.dtype(np.float32),)
    key = ""  # _simd32.KERNELS holds the fast variant's loops as "<name>_fast"

    def _input(self, x):
        x = np.asarray(x)
        if x.dtype != np.float32:
            raise TypeError(f"{self.__name__}: computes in float32 and takes float32 arrays only, "
                            f"got dtype {x.dtype} (for float64: {self.name}_simd or {self.name})")
        return x

    def _run(self, flat, y, values):
        # every kernel module: KERNELS by name, and run(name, inputs, out, params)
        name = self.name + self.key
        module = next(m for m in (_simd32_expm1, _simd32_gelu_tanh, _simd32) if name in m.KERNELS)
        module.run(name, (flat,), y, dict(zip(self.defaults, values, strict=True)))


class Simd32FastKernel(Simd32Kernel):
    """A kernel of ``_simd32``'s fast variant: float32 arithmetic without correction steps, at
    the copy roofline within a looser budget (bench/core/budgets.toml); float32 input only."""

    suffix = "_simd_f32_fast"
    key = "_fast"


class GatedKernel:
    """A gated kernel y = f(a, b), called as ``f(a, b)`` or, PyTorch's way, ``f(x, dim=-1)``
    with x split in half along ``dim`` (first half content a, second half gate b)."""

    def __init__(self, name, ufunc):
        self.__name__ = self.name = name
        self.ufunc = ufunc

    def __repr__(self):
        return f"<gated kernel {self.name}(a, b) | {self.name}(x, dim=-1)>"

    def __call__(self, a, b=None, *, dim=-1, out=None):
        a = _as_float_array(a, self.name)
        if b is None:
            if a.ndim == 0 or a.shape[dim] % 2:
                size = "a scalar" if a.ndim == 0 else f"of size {a.shape[dim]}"
                raise ValueError(f"{self.name}: dimension {dim} is {size}; it must be even to split")
            a, b = np.split(a, 2, axis=dim)
        else:
            b = _as_float_array(b, self.name)
            if b.dtype != a.dtype:
                raise TypeError(f"{self.name}: a is {a.dtype} but b is {b.dtype}")
        shape = np.broadcast_shapes(a.shape, b.shape)
        if out is not None and (not isinstance(out, np.ndarray) or out.dtype != a.dtype
                                or out.shape != shape):
            raise ValueError(f"{self.name}: out must be a {a.dtype} array of shape {shape}")
        with np.errstate(all="ignore"):
            return self._apply(a, b, out)

    def _apply(self, a, b, out):
        return self.ufunc(a, b, out=out)


class GatedFastKernel(GatedKernel):
    """A gated kernel of ``_gated_fast``: a vectorized loop (see there for how each float32
    kernel keeps its budget), threads for large arrays, the accurate kernel's value where the
    plain product does not hold.  Called as ``GatedKernel``; operands that broadcast or are not
    contiguous are copied first."""

    def __init__(self, name):
        super().__init__(name, None)
        self.base = name.removesuffix("_fast")

    def __repr__(self):
        return super().__repr__().replace("gated kernel", "fast gated kernel")

    def _apply(self, a, b, out):
        shape = np.broadcast_shapes(a.shape, b.shape)
        if a.shape != shape:
            a = np.broadcast_to(a, shape)
        if b.shape != shape:
            b = np.broadcast_to(b, shape)
        flat_a = np.ascontiguousarray(a).reshape(-1)
        flat_b = np.ascontiguousarray(b).reshape(-1)
        # into out only if it shares no memory with a or b, not even element for element: the
        # loop's edge pass reads b (and a) again after the main pass has written out
        direct = (out is not None and out.flags.c_contiguous and out.flags.writeable
                  and not any(np.may_share_memory(out, v) for v in (flat_a, flat_b)))
        y = out.reshape(-1) if direct else np.empty(flat_a.shape, a.dtype)
        _gated_fast.run(self.base, (flat_a, flat_b), y, {})
        return deliver(y, out, direct, shape)


class RowwiseKernel:
    """A row-wise kernel along ``axis``: ``softmax(x, axis=-1, temperature=1.0)``, or with an
    upstream gradient, ``softmax_vjp(x, g, axis=-1, temperature=1.0)`` (the gradient of
    softmax(x/temperature) with respect to x, contracted with g)."""

    def __init__(self, name, rows, takes_gradient=False):
        self.__name__ = self.name = name
        self.rows = rows
        self.takes_gradient = takes_gradient

    def __repr__(self):
        g = "g, " if self.takes_gradient else ""
        return f"<row-wise kernel {self.name}(x, {g}axis=-1, temperature=1.0)>"

    def __call__(self, x, g=None, *, axis=-1, temperature=1.0, out=None):
        x = _as_float_array(x, self.name)
        if x.ndim == 0:
            raise ValueError(f"{self.name}: needs an array with at least one axis")
        if not (isinstance(temperature, (int, float, np.floating)) and temperature > 0
                and np.isfinite(temperature)):
            raise ValueError(f"{self.name}: temperature must be a finite number > 0, got {temperature!r}")
        if self.takes_gradient:
            if g is None:
                raise TypeError(f"{self.name}: needs the upstream gradient g")
            g = _as_float_array(g, self.name)
            if g.shape != x.shape or g.dtype != x.dtype:
                raise ValueError(f"{self.name}: g must be {x.dtype} of shape {x.shape}")
        elif g is not None:
            raise TypeError(f"{self.name}: takes no gradient argument")
        if out is not None and (not isinstance(out, np.ndarray) or out.shape != x.shape
                                or out.dtype != x.dtype):
            raise ValueError(f"{self.name}: out must be a {x.dtype} array of shape {x.shape}")
        if x.size == 0:  # an empty array gives an empty array
            y = np.empty_like(x)
            if out is None:
                return y
            return out
        y = self._compute(x, g, axis, float(temperature))
        if out is None:
            return y
        out[...] = y
        return out

    def _compute(self, x, g, axis, tau):
        moved = np.moveaxis(x, axis, -1)
        rows = np.ascontiguousarray(moved, dtype=np.float64).reshape(-1, moved.shape[-1])
        result = np.empty_like(rows)
        if self.takes_gradient:
            g_rows = np.ascontiguousarray(np.moveaxis(g, axis, -1), dtype=np.float64)
            self.rows(rows, g_rows.reshape(rows.shape), tau, result)
        else:
            self.rows(rows, tau, result)
        with np.errstate(over="ignore"):  # a float32 result beyond its range is inf, as it should
            return np.moveaxis(result.reshape(moved.shape), -1, axis).astype(x.dtype)  # one rounding


class RowwiseFastKernel(RowwiseKernel):
    """A row-wise kernel of ``_rowwise_fast``: SIMD passes within each row, in the input's
    dtype (float32 computed in float64 and rounded once), threads across rows; rows the fast
    passes do not cover, and float64 VJPs, go through the accurate kernel (see
    ``_rowwise_fast``).  Called as ``RowwiseKernel``."""

    def __init__(self, name, accurate):
        super().__init__(name, accurate.rows, accurate.takes_gradient)
        self.base = name.removesuffix("_fast")

    def __repr__(self):
        return super().__repr__().replace("row-wise kernel", "fast row-wise kernel")

    def _compute(self, x, g, axis, tau):
        # the float64 VJPs, and a temperature so small that 1/tau overflows (the fast passes
        # multiply by it)
        if (self.base, x.dtype.name) not in _rowwise_fast.KERNELS or not np.isfinite(1.0 / tau):
            return super()._compute(x, g, axis, tau)
        moved = np.moveaxis(x, axis, -1)
        rows = np.ascontiguousarray(moved).reshape(-1, moved.shape[-1])
        result = np.empty_like(rows)
        g_rows = None
        if self.takes_gradient:
            g_rows = np.ascontiguousarray(np.moveaxis(g, axis, -1)).reshape(rows.shape)
        # short float32 rows run across rows (a router's 8 logits), longer ones along them
        short = rows.dtype == np.float32 and rows.shape[1] <= _rowwise_short.SHORT_MAX
        (_rowwise_short if short else _rowwise_fast).run(
            self.base, (rows,) if g_rows is None else (rows, g_rows), result, {"temperature": tau})
        return np.moveaxis(result.reshape(moved.shape), -1, axis)


def _params(name, defaults, params) -> dict:
    """The defaults updated by ``params``; TypeError naming any parameter the kernel lacks."""
    unknown = set(params) - set(defaults)
    if unknown:
        raise TypeError(f"{name}: unknown parameter(s) {sorted(unknown)}; "
                        f"it takes {sorted(defaults) or 'none'}")
    return {**defaults, **params}


def _check_out(name, out, x):
    if out is not None and (
        not isinstance(out, np.ndarray) or out.dtype != x.dtype or out.shape != x.shape
    ):
        raise ValueError(f"{name}: out must be a {x.dtype} array of shape {x.shape}")


def _as_float_array(x, name, extra=()):
    x = x if isinstance(x, np.ndarray) else np.asarray(x)
    if x.dtype not in SUPPORTED_DTYPES and x.dtype not in extra:
        kinds = "float16, bfloat16, float32 or float64" if extra else "float32 or float64"
        raise TypeError(f"{name}: expected a {kinds} array, got dtype {x.dtype}")
    return x


def _gated(name):
    return tuple(
        GatedKernel(n, getattr(_accurate, n)) for n in (name, f"d_{name}_a", f"d_{name}_b")
    )


def _pair(name, **defaults):
    return (
        Kernel(name, getattr(_accurate, name), **defaults),
        Kernel(f"d_{name}", getattr(_accurate, f"d_{name}"), **defaults),
    )


# each elementwise activation of ``_accurate.ELEMENTWISE`` becomes module attributes ``<name>``,
# ``d_<name>``, ``<name>_<variant>`` and ``d_<name>_<variant>``
_VARIANT_KERNELS = {"simd": SimdKernel, "simd_f32": Simd32Kernel, "simd_f32_fast": Simd32FastKernel}


def _elementwise_kernels() -> dict:
    made = {}
    for name, variants in ELEMENTWISE.items():
        params = PARAMS.get(name, {})
        made[name], made[f"d_{name}"] = _pair(name, **params)
        for variant in variants:
            for fn in (name, f"d_{name}"):
                made[f"{fn}_{variant}"] = _VARIANT_KERNELS[variant](fn, **params)
    return made


_ELEMENTWISE_KERNELS = _elementwise_kernels()
globals().update(_ELEMENTWISE_KERNELS)

glu, d_glu_a, d_glu_b = _gated("glu")
geglu, d_geglu_a, d_geglu_b = _gated("geglu")
swiglu, d_swiglu_a, d_swiglu_b = _gated("swiglu")
reglu, d_reglu_a, d_reglu_b = _gated("reglu")
glu_fast, d_glu_a_fast, d_glu_b_fast = (GatedFastKernel(f"{n}_fast") for n in ("glu", "d_glu_a", "d_glu_b"))
geglu_fast, d_geglu_a_fast, d_geglu_b_fast = (
    GatedFastKernel(f"{n}_fast") for n in ("geglu", "d_geglu_a", "d_geglu_b"))
swiglu_fast, d_swiglu_a_fast, d_swiglu_b_fast = (
    GatedFastKernel(f"{n}_fast") for n in ("swiglu", "d_swiglu_a", "d_swiglu_b"))
reglu_fast, d_reglu_a_fast, d_reglu_b_fast = (
    GatedFastKernel(f"{n}_fast") for n in ("reglu", "d_reglu_a", "d_reglu_b"))

softmax = RowwiseKernel("softmax", _rowwise.softmax_rows)
softmax_vjp = RowwiseKernel("softmax_vjp", _rowwise.softmax_vjp_rows, takes_gradient=True)
log_softmax = RowwiseKernel("log_softmax", _rowwise.log_softmax_rows)
log_softmax_vjp = RowwiseKernel("log_softmax_vjp", _rowwise.log_softmax_vjp_rows, takes_gradient=True)
softmax_fast = RowwiseFastKernel("softmax_fast", softmax)
softmax_vjp_fast = RowwiseFastKernel("softmax_vjp_fast", softmax_vjp)
log_softmax_fast = RowwiseFastKernel("log_softmax_fast", log_softmax)
log_softmax_vjp_fast = RowwiseFastKernel("log_softmax_vjp_fast", log_softmax_vjp)

__all__ = [
    "ELEMENTWISE",
    "NARROW_DTYPES",
    "PARAMS",
    "SELU_ALPHA",
    "SELU_SCALE",
    "SUPPORTED_DTYPES",
    "GatedFastKernel",
    "GatedKernel",
    "Kernel",
    "RowwiseFastKernel",
    "RowwiseKernel",
    "Simd32FastKernel",
    "Simd32Kernel",
    "SimdKernel",
    "compile_stats",
    *_ELEMENTWISE_KERNELS,
    *(f"{d}{n}{p}{v}" for n in ("glu", "geglu", "swiglu", "reglu")
      for d, p in (("", ""), ("d_", "_a"), ("d_", "_b")) for v in ("", "_fast")),
    *(f"{n}{v}" for n in ("softmax", "softmax_vjp", "log_softmax", "log_softmax_vjp")
      for v in ("", "_fast")),
]
