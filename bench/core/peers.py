"""Implementations audited beside ours: the seed notebook's NumPy formulas, SciPy, PyTorch
and a user's own callable.

Each implementation answers ``kernel(activation, direction)`` with a callable in our calling
convention (elementwise ``f(x, **params)``, gated ``f(a, b)``, row-wise
``f(x[, g], temperature=tau)`` along the last axis), or ``None`` where it has no such
function, which the audit shows as *absent* rather than as a failure.
"""

import importlib
import os
import sys
from collections.abc import Callable

import numpy as np

__all__ = ["BUILTIN", "Impl", "PeerUnavailable", "UserImpl", "resolve"]


class PeerUnavailable(RuntimeError):
    """An optional peer (torch) is not installed."""


class Impl:
    name = "ours"

    def kernel(self, case) -> Callable | None:
        return case.kernel


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


class NumpySeed(Impl):
    """The notebook's helpers.  Its ``gelu`` is the tanh approximation, so it stands for both
    gelu and gelu_tanh (audited against the exact erf form, it shows the approximation's
    error); leaky_relu gets the catalog's slope (the notebook's default is 0.1); derivatives
    the notebook does not write out are its ``finite_diff`` (cells 11-12)."""

    name = "numpy-seed"

    def __init__(self):
        fd = _seed_finite_diff
        self.table = {
            ("sigmoid", "forward"): _seed_sigmoid,
            ("sigmoid", "derivative"): _seed_d_sigmoid,
            ("tanh", "forward"): _seed_tanh,
            ("tanh", "derivative"): _seed_d_tanh,
            ("relu", "forward"): _seed_relu,
            ("relu", "derivative"): _seed_d_relu,
            ("leaky_relu", "forward"): lambda x, negative_slope: _seed_leaky_relu(x, negative_slope),
            ("softplus", "forward"): lambda x, beta: _seed_softplus(x),  # beta = 1 only
            ("gelu", "forward"): _seed_gelu,
            ("gelu", "derivative"): lambda x: fd(_seed_gelu, x),
            ("gelu_tanh", "forward"): _seed_gelu,
            ("gelu_tanh", "derivative"): lambda x: fd(_seed_gelu, x),
            ("silu", "forward"): _seed_silu,
            ("silu", "derivative"): lambda x: fd(_seed_silu, x),
            ("mish", "forward"): _seed_mish,
            ("mish", "derivative"): lambda x: fd(_seed_mish, x),
            ("softmax", "forward"): lambda x, temperature: _seed_softmax(x / temperature),
            # cells 28-32: the gates, and the bilinear gradient dy/da = gate
            ("glu", "forward"): lambda a, b: a * _seed_sigmoid(b),
            ("glu", "d_a"): lambda a, b: _seed_sigmoid(b),
            ("geglu", "forward"): lambda a, b: a * _seed_gelu(b),
            ("geglu", "d_a"): lambda a, b: _seed_gelu(b),
            ("swiglu", "forward"): lambda a, b: a * _seed_silu(b),
            ("swiglu", "d_a"): lambda a, b: _seed_silu(b),
        }

    def kernel(self, case):
        return self.table.get((case.activation.name, case.direction))


class Scipy(Impl):
    """scipy.special where it has the function (no derivatives there)."""

    name = "scipy"

    def kernel(self, case):
        import scipy.special as sp

        table = {
            ("sigmoid", "forward"): sp.expit,
            ("log_sigmoid", "forward"): sp.log_expit,
            ("softplus", "forward"): lambda x, beta: sp.softplus(x),  # beta = 1 only
            ("gelu", "forward"): lambda x: x * sp.ndtr(x),
            ("silu", "forward"): lambda x: x * sp.expit(x),
            ("softmax", "forward"): lambda x, temperature: sp.softmax(x / temperature, axis=-1),
            ("log_softmax", "forward"):
                lambda x, temperature: sp.log_softmax(x / temperature, axis=-1),
            ("glu", "forward"): lambda a, b: a * sp.expit(b),
            ("geglu", "forward"): lambda a, b: a * (b * sp.ndtr(b)),
            ("swiglu", "forward"): lambda a, b: a * (b * sp.expit(b)),
        }
        return table.get((case.activation.name, case.direction))


class Torch(Impl):
    """PyTorch on the CPU: torch.nn.functional forward, autograd for every derivative."""

    name = "torch"

    def __init__(self):
        try:
            import torch
        except ImportError:
            raise PeerUnavailable(
                "torch is not installed: pip install -e '.[torch]' (the pinned CPU wheel)"
            ) from None
        self.torch = torch
        self.F = torch.nn.functional

    def _to(self, x):
        torch = self.torch
        if x.dtype.name == "bfloat16":
            return torch.from_numpy(x.view(np.int16).copy()).view(torch.bfloat16)
        return torch.from_numpy(np.ascontiguousarray(x))

    def _back(self, t, like):
        if like.dtype.name == "bfloat16":
            return t.detach().view(self.torch.int16).numpy().view(like.dtype)
        return t.detach().numpy()

    def _forward(self, name, params):
        F, torch = self.F, self.torch
        p = params
        table = {
            "relu": F.relu, "relu6": F.relu6, "selu": F.selu, "sigmoid": torch.sigmoid,
            "log_sigmoid": F.logsigmoid, "tanh": torch.tanh, "softsign": F.softsign,
            "hardsigmoid": F.hardsigmoid, "hardswish": F.hardswish, "silu": F.silu,
            "mish": F.mish, "gelu": F.gelu,
            "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
            "hardtanh": lambda t: F.hardtanh(t, p.get("min_val", -1.0), p.get("max_val", 1.0)),
            "leaky_relu": lambda t: F.leaky_relu(t, p.get("negative_slope", 0.01)),
            "elu": lambda t: F.elu(t, p.get("alpha", 1.0)),
            "celu": lambda t: F.celu(t, p.get("alpha", 1.0)),
            "softplus": lambda t: F.softplus(t, p.get("beta", 1.0)),
            "glu": lambda a, b: F.glu(torch.cat([a, b], dim=-1), dim=-1),
            "geglu": lambda a, b: a * F.gelu(b),
            "swiglu": lambda a, b: a * F.silu(b),
            "reglu": lambda a, b: a * F.relu(b),
        }
        return table.get(name)

    def kernel(self, case):
        act, direction, torch = case.activation, case.direction, self.torch
        if act.kind == "rowwise":
            f = self.F.softmax if act.name == "softmax" else self.F.log_softmax

            def rowwise(x, g=None, temperature=1.0):
                t = self._to(x).requires_grad_(direction == "vjp")
                y = f(t / temperature, dim=-1)
                if direction == "forward":
                    return self._back(y, x)
                y.backward(self._to(g))
                return self._back(t.grad, x)

            return rowwise
        f = self._forward(act.name, act.params)
        if f is None:
            return None
        if act.kind == "gated":
            def gated(a, b):
                ta = self._to(a).requires_grad_(direction == "d_a")
                tb = self._to(b).requires_grad_(direction == "d_b")
                y = f(ta, tb)
                if direction == "forward":
                    return self._back(y, a)
                y.backward(torch.ones_like(y))
                return self._back(ta.grad if direction == "d_a" else tb.grad, a)

            return gated

        def elementwise(x, **params):
            t = self._to(x).requires_grad_(direction == "derivative")
            y = f(t)
            if direction == "forward":
                return self._back(y, x)
            y.backward(torch.ones_like(y))
            return self._back(t.grad, x)

        return elementwise


class UserImpl(Impl):
    """A user's callable(s) for one activation, given as ``module:function``: the forward
    function, and optionally the elementwise derivative or row-wise VJP the same way."""

    def __init__(self, spec: str, derivative: str | None = None):
        self.name = spec
        self.forward = load_callable(spec)
        self.derivative = load_callable(derivative) if derivative else None

    def kernel(self, case):
        if case.direction == "forward":
            return self.forward
        return self.derivative if case.direction in ("derivative", "vjp") else None


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


BUILTIN = {"ours": Impl, "numpy-seed": NumpySeed, "scipy": Scipy, "torch": Torch}


def resolve(name: str, derivative: str | None = None) -> Impl:
    """An implementation by name (ours, numpy-seed, scipy, torch) or ``module:function``."""
    if name in BUILTIN:
        return BUILTIN[name]()
    if ":" in name:
        return UserImpl(name, derivative)
    raise ValueError(f"unknown implementation {name!r}; known: {', '.join(BUILTIN)}, "
                     "or module:function")

