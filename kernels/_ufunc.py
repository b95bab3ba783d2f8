"""Ufunc-like callables over scalar Numba functions, with loops that are cached on disk.

Why not ``numba.vectorize``: Numba caches a ufunc's element function but rebuilds its wrapper
loop in every process, and with about a hundred kernels that is seconds of LLVM work on every
``import actbench_ulp.kernels``.  ``Ufunc`` keeps the ufunc's behaviour that the kernels rely
on (float32 in, float32 out; float64 in, float64 out; inputs and parameters broadcast;
``out=``; a 0-d input gives a scalar) with plain ``njit`` loops that ``_cache`` keeps on disk,
so a warm process loads them in milliseconds.

A parameter or input that is a single value is read with stride 0 instead of being
broadcast into a full array; anything else that broadcasts is copied to a contiguous array
first (the accurate kernels are not the fast path, but they should not pay for a copy of a
scalar parameter).
"""

import numpy as np
from numba import njit

from ._cache import cached

__all__ = ["Ufunc", "deliver", "ufunc"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _loop(scalar, arity):
    """A loop over flat arrays; argument k is read at ``i * stride_k`` (stride 0 or 1)."""
    if arity == 1:
        def loop(out, a, sa):
            for i in range(out.size):
                out[i] = scalar(a[i * sa])
    elif arity == 2:
        def loop(out, a, sa, b, sb):
            for i in range(out.size):
                out[i] = scalar(a[i * sa], b[i * sb])
    elif arity == 3:
        def loop(out, a, sa, b, sb, c, sc):
            for i in range(out.size):
                out[i] = scalar(a[i * sa], b[i * sb], c[i * sc])
    else:
        raise ValueError(f"no loop for {arity} arguments")
    return loop


class Ufunc:
    """``name(*inputs, *params, out=None)`` elementwise over ``scalar``, NumPy-ufunc style:
    the inputs (float32 or float64, one dtype) set the result's dtype, the parameters are
    float64; all broadcast together."""

    def __init__(self, name, scalar, n_inputs, n_params):
        self.__name__ = name
        self.n_inputs, self.n_params = n_inputs, n_params
        arity = n_inputs + n_params
        self._loop = cached(njit(error_model="numpy", fastmath=False)(_loop(scalar, arity)),
                            f"ufunc.{name}")

    def __repr__(self):
        return f"<ufunc-like {self.__name__}>"

    def __call__(self, *args, out=None):
        if len(args) != self.n_inputs + self.n_params:
            raise TypeError(f"{self.__name__} takes {self.n_inputs + self.n_params} arguments, "
                            f"got {len(args)}")
        inputs = [np.asarray(a) for a in args[:self.n_inputs]]
        dtype = inputs[0].dtype
        if dtype not in _FLOATS or any(a.dtype != dtype for a in inputs):
            raise TypeError(f"{self.__name__}: inputs must all be float32 or all float64, got "
                            f"{', '.join(str(a.dtype) for a in inputs)}")
        params = [np.asarray(p, dtype=np.float64) for p in args[self.n_inputs:]]
        arrays = inputs + params
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        flat = []
        for a in arrays:
            if a.size == 1:
                flat += [a.reshape(1), 0]
            else:
                if a.shape != shape:
                    a = np.broadcast_to(a, shape)
                flat += [np.ascontiguousarray(a).reshape(-1), 1]
        if out is not None and (not isinstance(out, np.ndarray) or out.dtype != dtype
                                or out.shape != shape):
            raise ValueError(f"{self.__name__}: out must be a {dtype} array of shape {shape}")
        direct = (out is not None and out.flags.c_contiguous and out.flags.writeable
                  and not any(isinstance(a, np.ndarray) and np.may_share_memory(out, a)
                              and out.ctypes.data != a.ctypes.data for a in flat[::2]))
        y = out.reshape(-1) if direct else np.empty(int(np.prod(shape)), dtype)
        if y.size:
            self._loop(y, *flat)
        return deliver(y, out, direct, shape)


def deliver(y, out, direct, shape):
    """What a kernel returns after its loop filled the flat ``y``: ``out`` itself when ``y``
    was ``out``'s own memory (``direct``), else ``y`` copied into ``out``, else ``y`` in
    ``shape`` (a NumPy scalar for shape ())."""
    if direct:
        return out
    if out is not None:
        out[...] = y.reshape(shape)
        return out
    return y.reshape(shape)[()] if shape == () else y.reshape(shape)


def ufunc(n_inputs=1, n_params=0):
    """Decorator: a scalar function (Numba-compilable) as a ``Ufunc`` of its name."""
    def wrap(func):
        # fastmath stated: see _dd64._jit
        return Ufunc(func.__name__, njit(error_model="numpy", fastmath=False)(func), n_inputs, n_params)
    return wrap
