"""The framework peers: PyTorch and JAX on the CPU, each under its own functions' names and
parameters, differentiated by its own autograd.

Like every peer they answer ``kernel(case)`` with a callable in our calling convention on NumPy
arrays (see ``actbench.core.peers``), or ``None`` where the framework has no such function.
They are reached through ``actbench.core.peers`` (``resolve("torch")``, ``BUILTIN``).  Neither
framework is imported until its peer is created: a missing one raises ``PeerUnavailable``
saying how to install it.  Arrays travel, and autograd runs, as for a user's callable in the
same framework (``actbench.core.arrays``): a user's copy of a peer's expression gives its bits.
"""

import importlib.util

import numpy as np

from actbench.core import arrays
from actbench.core.impl import Impl, PeerUnavailable
from actbench.kernels import SELU_ALPHA, SELU_SCALE

__all__ = ["Jax", "Torch"]

_WRT = {"derivative": 0, "d_a": 0, "d_b": 1}  # the input a derivative is taken with respect to


def _framework(name: str, wheels: str) -> arrays.Library:
    try:
        return arrays.library(name)
    except ValueError as exc:
        why = f"{name} is not installed" if importlib.util.find_spec(name) is None else str(exc)
        raise PeerUnavailable(f"{why}: pip install -e '.[{name}]' ({wheels})") from None


def _ignoring_params(f):
    # the audit passes the catalog's parameters with every call; the expression holds them
    # already, and torch's functions take them under other names or not at all (F.selu)
    return lambda t, **params: f(t)


class Torch(Impl):
    """PyTorch on the CPU: torch.nn.functional forward, autograd for every derivative.

    Each forward expression is an ``arrays.ArrayCallable`` in torch and each derivative its
    ``gradient``, as a user's torch callable with ``derivative="autograd"`` is: the same
    conversions, the same autograd, and (``prepare``) the same timing on tensors."""

    name = "torch"

    def __init__(self):
        self.lib = _framework("torch", "the pinned CPU wheel")
        self.torch = self.lib.torch
        self.F = self.torch.nn.functional

    def _forward(self, name, params):
        F, torch = self.F, self.torch
        p = params
        table = {
            "relu": F.relu, "relu6": F.relu6, "selu": F.selu, "sigmoid": torch.sigmoid,
            "log_sigmoid": F.logsigmoid, "tanh": torch.tanh, "softsign": F.softsign,
            "hardsigmoid": F.hardsigmoid, "hardswish": F.hardswish, "silu": F.silu,
            "mish": F.mish, "gelu": F.gelu,
            "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
            "hardtanh": lambda t: F.hardtanh(t, p["min_val"], p["max_val"]),
            "leaky_relu": lambda t: F.leaky_relu(t, p["negative_slope"]),
            "elu": lambda t: F.elu(t, p["alpha"]),
            "celu": lambda t: F.celu(t, p["alpha"]),
            "softplus": lambda t: F.softplus(t, p["beta"]),
            "glu": lambda a, b: F.glu(torch.cat([a, b], dim=-1), dim=-1),
            "geglu": lambda a, b: a * F.gelu(b),
            "swiglu": lambda a, b: a * F.silu(b),
            "reglu": lambda a, b: a * F.relu(b),
            "softmax": lambda x, temperature=1.0: F.softmax(x / temperature, dim=-1),
            "log_softmax": lambda x, temperature=1.0: F.log_softmax(x / temperature, dim=-1),
        }
        return table.get(name)

    def kernel(self, case):
        act, direction = case.activation, case.direction
        f = self._forward(act.name, act.params)
        if f is None:
            return None
        if act.kind == "elementwise":
            f = _ignoring_params(f)
        forward = arrays.ArrayCallable(f, self.lib)
        forward.__name__ = f"torch {act.name}"
        if direction == "forward":
            return forward
        return forward.gradient(_WRT.get(direction, 0), cotangent=direction == "vjp")


# jax.nn.selu's constants are PyTorch's, which the catalog's selu has: jax's only at these
_JAX_SELU = {"alpha": SELU_ALPHA, "scale": SELU_SCALE}


class Jax(Impl):
    """JAX on the CPU, jit-compiled: jax.nn under its own names and parameters.

    ``gelu`` is ``jax.nn.gelu(x, approximate=False)`` (the erf form: jax.nn.gelu's default is
    the tanh approximation, which stands for ``gelu_tanh`` only).  jax.nn fixes some
    parameters, so softplus (beta = 1), hardtanh ([-1, 1]) and selu (its own constants) are
    jax's only at those values, else *absent*.  jax.nn has ``glu`` (of the concatenation
    [a, b]) but no geglu, swiglu or reglu: those are composed as torch's are, ``a * gelu(b)``
    (erf form), ``a * silu(b)``, ``a * relu(b)``, from jax.nn's functions.  Row-wise:
    ``jax.nn.softmax`` / ``log_softmax`` of ``x / temperature`` along the last axis.

    Derivatives: ``jax.vjp`` inside the jit (``arrays.Jax.vjp``, as for a user's JAX callable),
    with a cotangent of ones (what a backward pass sends; for gated ones with respect to a or
    b) or the upstream ``g`` for the row-wise VJP.  float64 runs under ``jax.enable_x64`` for
    each call, so creating the peer changes no global JAX setting.  ``device_kernel`` and
    ``to_device`` are for timing: the jitted function on JAX arrays, without the conversions.
    """

    name = "jax"

    def __init__(self):
        self.lib = _framework("jax", "the pinned CPU wheels")
        self.jax = self.lib.jax
        self.cpu = self.jax.devices("cpu")[0]
        self._compiled = {}

    def _forward(self, name, params):
        nn, jnp = self.jax.nn, self.jax.numpy
        fixed = {"softplus": ({"beta": 1.0}, nn.softplus),
                 "hardtanh": ({"min_val": -1.0, "max_val": 1.0}, nn.hard_tanh),
                 "selu": (_JAX_SELU, nn.selu)}
        if name in fixed:
            jax_params, fn = fixed[name]
            return fn if dict(params) == jax_params else None
        p = params
        table = {
            "relu": nn.relu, "relu6": nn.relu6, "sigmoid": nn.sigmoid,
            "log_sigmoid": nn.log_sigmoid, "tanh": nn.tanh, "softsign": nn.soft_sign,
            "hardsigmoid": nn.hard_sigmoid, "hardswish": nn.hard_swish, "silu": nn.silu,
            "mish": nn.mish,
            "gelu": lambda t: nn.gelu(t, approximate=False),
            "gelu_tanh": lambda t: nn.gelu(t, approximate=True),
            "leaky_relu": lambda t: nn.leaky_relu(t, p["negative_slope"]),
            "elu": lambda t: nn.elu(t, p["alpha"]),
            "celu": lambda t: nn.celu(t, p["alpha"]),
            "glu": lambda a, b: nn.glu(jnp.concatenate([a, b], axis=-1), axis=-1),
            "geglu": lambda a, b: a * nn.gelu(b, approximate=False),
            "swiglu": lambda a, b: a * nn.silu(b),
            "reglu": lambda a, b: a * nn.relu(b),
        }
        return table.get(name)

    def _jitted(self, act, direction):
        """The jitted function on JAX arrays: elementwise ``f(x)``, gated ``f(a, b)``, row-wise
        ``f(x, temperature)`` or ``f(x, g, temperature)``; None where jax.nn has none."""
        jax, vjp = self.jax, self.lib.vjp
        if act.kind == "rowwise":
            f = jax.nn.softmax if act.name == "softmax" else jax.nn.log_softmax
            if direction == "forward":
                return jax.jit(lambda x, tau: f(x / tau, axis=-1))
            return jax.jit(lambda x, g, tau: vjp(lambda t, tau: f(t / tau, axis=-1), (x, tau), {}, 0, g))
        f = self._forward(act.name, act.params)
        if f is None:
            return None
        if direction == "forward":
            return jax.jit(f)
        return jax.jit(lambda *args: vjp(f, args, {}, _WRT[direction], None))

    def device_kernel(self, case):
        """Our calling convention on JAX arrays (see ``to_device``), returning the JAX array
        unblocked; None where jax.nn has no such function.  Compiled on the first call per
        dtype and shape."""
        act, direction = case.activation, case.direction
        key = (act.name, tuple(sorted(act.params.items())), direction)
        if key not in self._compiled:
            self._compiled[key] = self._jitted(act, direction)
        fn = self._compiled[key]
        if fn is None:
            return None
        if act.kind == "rowwise":
            if direction == "forward":
                return lambda x, temperature=1.0: fn(x, temperature)
            return lambda x, g, temperature=1.0: fn(x, g, temperature)
        if act.kind == "gated":
            return fn
        return lambda x, **params: fn(x)  # the catalog's parameters, fixed when it was built

    def to_device(self, x: np.ndarray):
        """A NumPy array as a JAX array on the CPU, float64 kept (x64 for this conversion)."""
        with self.jax.default_device(self.cpu):
            return self.lib.native(x, x64=True)

    def kernel(self, case):
        run = self.device_kernel(case)
        if run is None:
            return None
        jax = self.jax

        def on_numpy(*inputs, **kwargs):
            with jax.enable_x64(True):
                y = run(*map(self.to_device, inputs), **kwargs)
                return np.array(self.lib.numpy(y))  # writable, as every other peer's result

        return on_numpy
