"""Implementations audited beside ours: the seed notebook's NumPy formulas, SciPy, PyTorch
and JAX (``framework_peers``) and a user's own callable.

Each implementation answers ``kernel(case)`` (``actbench_ulp.core.impl.Impl``) with a callable in
our calling convention, or ``None`` where it has no such function.  ``resolve`` finds one by
name (``BUILTIN``) or as ``module:function``.
"""

import importlib
import os
import sys
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np

from actbench_ulp.core import arrays
from actbench_ulp.core.framework_peers import Jax, Torch
from actbench_ulp.core.impl import Impl, PeerUnavailable, Spelled

__all__ = ["AUTOGRAD", "BUILTIN", "Impl", "PeerUnavailable", "UserImpl", "resolve"]

AUTOGRAD = "autograd"  # as a derivative: the forward's framework differentiates it


# --- the theory notebook (shared/seeds/000_*), its formulas as written there ----------------


def _seed_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _seed_tanh(x):
    return np.tanh(x)


def _seed_relu(x):
    return np.maximum(0, x)


def _seed_leaky_relu(x, alpha=0.1):
    return np.where(x > 0, x, alpha * x)


def _seed_softplus(x):
    return np.logaddexp(0, x)


def _seed_gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _seed_silu(x):
    return x * _seed_sigmoid(x)


def _seed_mish(x):
    return x * np.tanh(_seed_softplus(x))


def _seed_softmax(z, axis=-1):
    z = np.asarray(z, dtype=float)
    shifted = z - np.max(z, axis=axis, keepdims=True)
    exp_shifted = np.exp(shifted)
    return exp_shifted / np.sum(exp_shifted, axis=axis, keepdims=True)


def _seed_finite_diff(f, x, eps=1e-5):
    return (f(x + eps) - f(x - eps)) / (2 * eps)


def _seed_d_sigmoid(x):  # cell 8: s * (1 - s)
    s = _seed_sigmoid(x)
    return s * (1 - s)


def _seed_d_tanh(x):  # cell 10: 1 - t**2
    return 1 - _seed_tanh(x) ** 2


def _seed_d_relu(x):  # cell 12: (x > 0).astype(float)
    return (x > 0).astype(float)


# the names the notebook's spellings use (``Activation.peers["numpy-seed"]``)
SEED = SimpleNamespace(
    sigmoid=_seed_sigmoid, tanh=_seed_tanh, relu=_seed_relu, leaky_relu=_seed_leaky_relu,
    softplus=_seed_softplus, gelu=_seed_gelu, silu=_seed_silu, mish=_seed_mish,
    softmax=_seed_softmax, finite_diff=_seed_finite_diff, d_sigmoid=_seed_d_sigmoid,
    d_tanh=_seed_d_tanh, d_relu=_seed_d_relu,
)


class NumpySeed(Spelled):
    """The notebook's helpers.  Its ``gelu`` is the tanh approximation, so it stands for both
    gelu and gelu_tanh (audited against the exact erf form, it shows the approximation's
    error); leaky_relu gets the catalog's slope (the notebook's default is 0.1); derivatives
    the notebook does not write out are its ``finite_diff`` (cells 11-12)."""

    name = "numpy-seed"

    def __init__(self):
        self.names = {"seed": SEED, "np": np}


class Scipy(Spelled):
    """scipy.special where it has the function (no derivatives there)."""

    name = "scipy"

    def __init__(self):
        import scipy.special

        self.names = {"special": scipy.special, "np": np}


class UserImpl(Impl):
    """A user's callable(s) for one activation: the forward function and optionally the
    elementwise derivative or row-wise VJP, given as objects (the Python API) or as
    ``module:function`` (``from_spec``, the command line).

    The callables may work on NumPy, torch, JAX, CuPy or any array-API library: ``library``
    names it ("auto": detected), and the audit's NumPy arrays are converted both ways
    (``actbench_ulp.core.arrays``).  ``derivative="autograd"`` differentiates the forward with its
    framework's autograd: the elementwise derivative, the row-wise VJP and the gated d_a, d_b."""

    def __init__(self, name: str, forward: Callable, derivative: Callable | str | None = None,
                 library: "str | arrays.Library" = "auto"):
        if isinstance(derivative, str) and derivative != AUTOGRAD:
            raise ValueError(f"derivative {derivative!r}: give a callable or {AUTOGRAD!r}")
        self.name = name
        self.forward = forward
        self.derivative = derivative
        self.library = library
        self.autograd = isinstance(derivative, str)
        self._forward = arrays.ArrayCallable(forward, library)
        self._derivative = (None if derivative is None or self.autograd
                            else arrays.ArrayCallable(derivative, library))

    @classmethod
    def from_spec(cls, spec: str, derivative: str | None = None,
                  library: str = "auto") -> "UserImpl":
        loaded = load_callable(derivative) if derivative and derivative != AUTOGRAD else derivative
        impl = cls(spec, load_callable(spec), loaded or None, library)
        impl.spec = (spec, derivative, library)  # to rebuild it in another process
        return impl

    def kernel(self, case):
        direction = case.direction
        if direction == "forward":
            return self._forward
        if self.autograd:
            if direction in ("d_a", "d_b"):
                return self._forward.gradient(wrt=0 if direction == "d_a" else 1, cotangent=False)
            return self._forward.gradient(wrt=0, cotangent=direction == "vjp")
        return self._derivative if direction in ("derivative", "vjp") else None


def load_callable(spec: str) -> Callable:
    """``package.module:function`` -> the function; ValueError naming what is wrong."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{spec!r} is not of the form module:function")
    # as `python -m` does: a module in the directory actbench was started from is found
    # (appended, so it never shadows an installed package)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ValueError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    try:
        fn = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(fn):
        raise ValueError(f"{spec!r} is not callable")
    return fn


BUILTIN = {"ours": Impl, "numpy-seed": NumpySeed, "scipy": Scipy, "torch": Torch, "jax": Jax}


def resolve(name: str, derivative: str | None = None, library: str = "auto") -> Impl:
    """An implementation by name (ours, numpy-seed, scipy, torch, jax) or ``module:function``
    (with its derivative: ``module:function`` or "autograd", and its array library)."""
    if name in BUILTIN:
        return BUILTIN[name]()
    if ":" in name:
        return UserImpl.from_spec(name, derivative, library)
    raise ValueError(f"unknown implementation {name!r}; known: {', '.join(BUILTIN)}, "
                     "or module:function")

