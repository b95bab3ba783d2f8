"""What an implementation is, for the audit and the benchmarks: ``kernel(case)`` gives a
callable in our calling convention (elementwise ``f(x, **params)``, gated ``f(a, b)``, row-wise
``f(x[, g], temperature=tau)`` along the last axis), or ``None`` where the implementation has
no such function (the audit shows it as *absent*, not as a failure).  ``Impl`` itself is ours:
the catalog's kernels.  The peers (``peers``, ``framework_peers``) subclass it, most through ``Spelled``:
the catalog says how each peer writes each activation."""

from collections.abc import Callable

from actbench_ulp.core.activation import INPUTS

__all__ = ["Impl", "PeerUnavailable", "Spelled"]


class PeerUnavailable(RuntimeError):
    """An optional peer (torch, jax) is not installed."""


class Impl:
    name = "ours"

    def kernel(self, case) -> Callable | None:
        return case.kernel


class Spelled(Impl):
    """A peer whose functions are the catalog's spellings (``Activation.peers[name]``): each an
    expression over ``names`` (``activation.PEERS`` lists them), one per activation and
    direction."""

    names: dict  # the peer's names its spellings use

    def spelled(self, act, direction: str = "forward") -> Callable | None:
        """``f(*inputs, **params)`` as the peer writes ``direction`` of ``act``, the parameters
        defaulting to the catalog's; None where it writes none."""
        spelling = act.spelling(self.name, direction)
        if spelling is None:
            return None
        return spelling.function(self.names, INPUTS[act.kind], act.params)

    def kernel(self, case):
        return self.spelled(case.activation, case.direction)
