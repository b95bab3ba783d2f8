"""The framework peers: PyTorch and JAX on the CPU, each activation as the catalog spells it
for that framework (``Activation.peers``), differentiated by the framework's own autograd.

Like every peer they answer ``kernel(case)`` with a callable in our calling convention on NumPy
arrays (see ``actbench_ulp.core.peers``), or ``None`` where the framework has no such function.
They are reached through ``actbench_ulp.core.peers`` (``resolve("torch")``, ``BUILTIN``).  Neither
framework is imported until its peer is created: a missing one raises ``PeerUnavailable``
saying how to install it.  Arrays travel, and autograd runs, as for a user's callable in the
same framework (``actbench_ulp.core.arrays``): a user's copy of a peer's expression gives its bits.
"""

import importlib.util

import numpy as np

from actbench_ulp.core import DISTRIBUTION, arrays
from actbench_ulp.core.impl import PeerUnavailable, Spelled

__all__ = ["Jax", "Torch"]

_WRT = {"derivative": 0, "d_a": 0, "d_b": 1}  # the input a derivative is taken with respect to


def _framework(name: str, wheels: str) -> arrays.Library:
    try:
        return arrays.library(name)
    except ValueError as exc:
        why = f"{name} is not installed" if importlib.util.find_spec(name) is None else str(exc)
        raise PeerUnavailable(f"{why}: pip install '{DISTRIBUTION}[{name}]' ({wheels}; from a "
                              f"checkout, pip install -e '.[{name}]')") from None


def _ignoring_params(f):
    # the audit passes the catalog's parameters with every call; the expression holds them
    # already, and torch's functions take them under other names or not at all (F.selu)
    return lambda t, **params: f(t)


class Torch(Spelled):
    """PyTorch on the CPU: torch.nn.functional forward, autograd for every derivative.

    Each forward expression is an ``arrays.ArrayCallable`` in torch and each derivative its
    ``gradient``, as a user's torch callable with ``derivative="autograd"`` is: the same
    conversions, the same autograd, and (``prepare``) the same timing on tensors."""

    name = "torch"

    def __init__(self):
        self.lib = _framework("torch", "the pinned CPU wheel")
        self.torch = self.lib.torch
        self.F = self.torch.nn.functional
        self.names = {"torch": self.torch, "F": self.F}

    def kernel(self, case):
        act, direction = case.activation, case.direction
        f = self.spelled(act)
        if f is None:
            return None
        if act.kind == "elementwise":
            f = _ignoring_params(f)
        forward = arrays.ArrayCallable(f, self.lib)
        forward.__name__ = f"torch {act.name}"
        if direction == "forward":
            return forward
        return forward.gradient(_WRT.get(direction, 0), cotangent=direction == "vjp")


class Jax(Spelled):
    """JAX on the CPU, jit-compiled: jax.nn's functions as the catalog spells them.

    ``gelu`` is ``jax.nn.gelu(x, approximate=False)`` (jax.nn.gelu's default is the tanh
    form, which stands for ``gelu_tanh`` only).  jax.nn fixes some parameters, so softplus,
    hardtanh and selu are jax's only at the catalog's defaults (``Spelling.only``), else
    *absent*.  geglu, swiglu and reglu are composed as torch's are, ``a * gelu(b)``.

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
        self.names = {"jax": self.jax, "nn": self.jax.nn, "jnp": self.jax.numpy}
        self._compiled = {}

    def _jitted(self, act, direction):
        """The jitted function on JAX arrays: elementwise ``f(x)``, gated ``f(a, b)``, row-wise
        ``f(x, temperature)`` or ``f(x, g, temperature)``; None where jax.nn has none."""
        jax, vjp = self.jax, self.lib.vjp
        f = self.spelled(act)
        if f is None:
            return None
        if act.kind == "rowwise":
            if direction == "forward":
                return jax.jit(f)
            return jax.jit(lambda x, g, tau: vjp(f, (x, tau), {}, 0, g))
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
