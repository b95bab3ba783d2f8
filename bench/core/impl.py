"""What an implementation is, for the audit and the benchmarks: ``kernel(case)`` gives a
callable in our calling convention (elementwise ``f(x, **params)``, gated ``f(a, b)``, row-wise
``f(x[, g], temperature=tau)`` along the last axis), or ``None`` where the implementation has
no such function (the audit shows it as *absent*, not as a failure).  ``Impl`` itself is ours:
the catalog's kernels.  The peers (``peers``, ``framework_peers``) subclass it."""

from collections.abc import Callable

__all__ = ["Impl", "PeerUnavailable"]


class PeerUnavailable(RuntimeError):
    """An optional peer (torch, jax) is not installed."""


class Impl:
    name = "ours"

    def kernel(self, case) -> Callable | None:
        return case.kernel
