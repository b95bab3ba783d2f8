"""Numba-compiled activation kernels: ``kernels.gelu(x)``, ``kernels.d_gelu(x)``, ...

Each kernel takes a float32 or float64 array of any shape (or a scalar of those dtypes) and
returns an array of the same dtype and shape; ``out=`` writes into a preallocated array.
Parameters use PyTorch's names and defaults and are keyword-only:
``kernels.leaky_relu(x, negative_slope=0.2)``.  ``d_<name>`` is dy/dx.

An empty array gives an empty array of the same dtype (as NumPy ufuncs and PyTorch do);
integer, float16 or complex input raises ``TypeError`` rather than being silently promoted.
"""

import numpy as np

from . import _accurate

# SELU's constants as PyTorch writes them (float64 literals of the paper's values).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


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
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise TypeError(
                f"{self.name}: unknown parameter(s) {sorted(unknown)}; "
                f"it takes {sorted(self.defaults) or 'none'}"
            )
        x = x if isinstance(x, np.ndarray) else np.asarray(x)
        if x.dtype not in SUPPORTED_DTYPES:
            raise TypeError(
                f"{self.name}: expected a float32 or float64 array, got dtype {x.dtype}"
            )
        if out is not None and (
            not isinstance(out, np.ndarray) or out.dtype != x.dtype or out.shape != x.shape
        ):
            raise ValueError(
                f"{self.name}: out must be a {x.dtype} array of shape {x.shape}"
            )
        values = [np.float64({**self.defaults, **params}[k]) for k in self.defaults]
        # NaN and infinities are handled deliberately inside the kernels; the flags their
        # comparisons raise are not errors of the caller's.
        with np.errstate(all="ignore"):
            return self.ufunc(x, *values, out=out)


def _pair(name, **defaults):
    return (
        Kernel(name, getattr(_accurate, name), **defaults),
        Kernel(f"d_{name}", getattr(_accurate, f"d_{name}"), **defaults),
    )


relu, d_relu = _pair("relu")
relu6, d_relu6 = _pair("relu6")
hardtanh, d_hardtanh = _pair("hardtanh", min_val=-1.0, max_val=1.0)
leaky_relu, d_leaky_relu = _pair("leaky_relu", negative_slope=0.01)
elu, d_elu = _pair("elu", alpha=1.0)
celu, d_celu = _pair("celu", alpha=1.0)
selu, d_selu = _pair("selu", alpha=SELU_ALPHA, scale=SELU_SCALE)
sigmoid, d_sigmoid = _pair("sigmoid")
log_sigmoid, d_log_sigmoid = _pair("log_sigmoid")
tanh, d_tanh = _pair("tanh")
softsign, d_softsign = _pair("softsign")
softplus, d_softplus = _pair("softplus", beta=1.0)
hardsigmoid, d_hardsigmoid = _pair("hardsigmoid")
hardswish, d_hardswish = _pair("hardswish")
gelu, d_gelu = _pair("gelu")
gelu_tanh, d_gelu_tanh = _pair("gelu_tanh")
silu, d_silu = _pair("silu")
mish, d_mish = _pair("mish")

__all__ = ["Kernel", "SELU_ALPHA", "SELU_SCALE", "SUPPORTED_DTYPES", *_accurate.__all__]
