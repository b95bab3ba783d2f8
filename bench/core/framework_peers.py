"""The framework peers: PyTorch and JAX on the CPU, each under its own functions' names and
parameters, differentiated by its own autograd.

Like every peer they answer ``kernel(case)`` with a callable in our calling convention on NumPy
arrays (see ``actbench.core.peers``), or ``None`` where the framework has no such function.
They are reached through ``actbench.core.peers`` (``resolve("torch")``, ``BUILTIN``).  Neither
framework is imported until its peer is created: a missing one raises ``PeerUnavailable``
saying how to install it.
"""

import numpy as np

from actbench.core.impl import Impl, PeerUnavailable

__all__ = ["Jax", "Torch"]


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


# jax.nn.selu's constants, as jax writes them: the catalog's selu is jax's only at these
_JAX_SELU = {"alpha": 1.6732632423543772848170429916717, "scale": 1.0507009873554804934193349852946}


class Jax(Impl):
    """JAX on the CPU, jit-compiled: jax.nn under its own names and parameters.

    ``gelu`` is ``jax.nn.gelu(x, approximate=False)`` (the erf form: jax.nn.gelu's default is
    the tanh approximation, which stands for ``gelu_tanh`` only).  jax.nn fixes some
    parameters, so softplus (beta = 1), hardtanh ([-1, 1]) and selu (its own constants) are
    jax's only at those values, else *absent*.  jax.nn has ``glu`` (of the concatenation
    [a, b]) but no geglu, swiglu or reglu: those are composed as torch's are, ``a * gelu(b)``
    (erf form), ``a * silu(b)``, ``a * relu(b)``, from jax.nn's functions.  Row-wise:
    ``jax.nn.softmax`` / ``log_softmax`` of ``x / temperature`` along the last axis.

    Derivatives: ``jax.grad`` of the sum of the outputs (the cotangent of ones a backward pass
    sends; for gated ones with respect to a or b), and ``jax.vjp`` with the upstream ``g`` for
    the row-wise VJP.  float64 runs under ``jax.enable_x64`` for each call, so creating the
    peer changes no global JAX setting.  ``device_kernel`` and ``to_device`` are for timing:
    the jitted function on JAX arrays, without the conversions.
    """

    name = "jax"

    def __init__(self):
        try:
            import jax
        except ImportError:

            raise PeerUnavailable(
                "jax is not installed: pip install -e '.[jax]' (the pinned CPU wheels)"
            ) from None
        self.jax = jax
        self.cpu = jax.devices("cpu")[0]
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
        jax, jnp = self.jax, self.jax.numpy
        if act.kind == "rowwise":
            f = jax.nn.softmax if act.name == "softmax" else jax.nn.log_softmax
            if direction == "forward":
                return jax.jit(lambda x, tau: f(x / tau, axis=-1))
            return jax.jit(lambda x, g, tau: jax.vjp(lambda t: f(t / tau, axis=-1), x)[1](g)[0])
        f = self._forward(act.name, act.params)
        if f is None:
            return None
        if direction == "forward":
            return jax.jit(f)
        wrt = {"derivative": 0, "d_a": 0, "d_b": 1}[direction]
        return jax.jit(jax.grad(lambda *args: jnp.sum(f(*args)), argnums=wrt))

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
        with self.jax.enable_x64(True):
            return self.jax.device_put(np.ascontiguousarray(x), self.cpu)

    def kernel(self, case):
        run = self.device_kernel(case)
        if run is None:
            return None
        jax = self.jax

        def on_numpy(*arrays, **kwargs):
            with jax.enable_x64(True):
                y = run(*(jax.device_put(np.ascontiguousarray(a), self.cpu) for a in arrays),
                        **kwargs)
                return np.array(y)  # a writable NumPy copy of JAX's read-only buffer

        return on_numpy
