"""A user's callable in any array library, called with the audit's NumPy arrays.

The audit speaks NumPy; a callable may take and return torch tensors, JAX or CuPy arrays, or
any other DLPack / array-API object.  ``ArrayCallable`` converts the inputs to the callable's
library (named, or detected from the callable's module and the modules it uses, else by trying
NumPy and then each installed framework), and the results back, zero-copy where the library
allows.  The conversion is audited as well: the input the callable receives is converted back
and compared with ours bit for bit before the call, so a lossy conversion (JAX without x64
turning float64 into float32, a framework without float16) is an error row naming the
problem, never silently wrong numbers.  ``ArrayCallable.gradient`` differentiates the
callable with its framework's autograd (torch, JAX).  ``prepare`` does the conversion and its
check once and hands back the callable on its library's own arrays, for timing.
"""

import functools
import inspect
import types
import warnings
from collections.abc import Callable

import numpy as np

from actbench_ulp.core.array_libs import (
    FRAMEWORKS,
    ArrayAPI,
    ConversionError,
    Library,
    installed,
    library,
    owner_of,
    root_of,
    to_numpy,
)

__all__ = ["FRAMEWORKS", "ArrayAPI", "ArrayCallable", "Autograd", "ConversionError", "Library", "detect",
           "library", "to_numpy"]

# module roots that mean "this callable works on NumPy arrays"
_NUMPY_ROOTS = {"numpy", "scipy", "numba", "ml_dtypes", "actbench_ulp", "builtins"}


def _library_of_module(module: str | None) -> str | None:
    root = root_of(module)
    if not root or root.startswith("_"):
        return None
    if root in _NUMPY_ROOTS:
        return "numpy"
    if root in FRAMEWORKS:
        return root
    return None


def detect(fn: Callable) -> str | None:
    """The library ``fn`` is written in, from its own module (torch.nn.functional.gelu, a
    torch.nn.Module, jax.nn.gelu) or, for a user's function, from the array libraries its code
    names; None when that does not tell."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = inspect.unwrap(fn)
    own = _library_of_module(getattr(fn, "__module__", None) or type(fn).__module__)
    if own not in (None, "numpy") or root_of(getattr(fn, "__module__", None)) in _NUMPY_ROOTS:
        return own
    try:
        names = inspect.getclosurevars(fn)
    except TypeError:  # not a Python function (a builtin, a callable object)
        return own
    used = set()
    for value in (*names.nonlocals.values(), *names.globals.values()):
        is_module = isinstance(value, types.ModuleType)
        module = value.__name__ if is_module else getattr(value, "__module__", None)
        found = _library_of_module(module) if isinstance(module, str) else None
        if found is None and is_module and hasattr(value, "__array_namespace_info__"):
            found = value.__name__  # an array-API namespace we have no special adapter for
        if found:
            used.add(found)
    frameworks = used - {"numpy"}
    if len(frameworks) == 1:
        return frameworks.pop()
    return "numpy" if used == {"numpy"} else None


def _same_bits(ours: np.ndarray, seen: np.ndarray) -> str:
    """"" when ``seen`` is ``ours`` bit for bit, else what differs."""
    if seen.dtype != ours.dtype:
        return f"{ours.dtype} became {seen.dtype}"
    if seen.shape != ours.shape:
        return f"shape {ours.shape} became {seen.shape}"
    uint = np.dtype(f"u{ours.dtype.itemsize}")
    differ = np.flatnonzero(np.ascontiguousarray(ours).view(uint) != np.ascontiguousarray(seen).view(uint))
    if not differ.size:
        return ""
    i = differ[0]
    a, b = ours.flat[i], seen.flat[i]
    return (f"{differ.size} of {ours.size} elements changed bits (first: "
            f"{float(a).hex()} became {float(b).hex()})")


class ArrayCallable:
    """``fn`` called with NumPy arrays: inputs converted to its library, results back.

    ``library_name`` is "auto" (detect), a library's name, or a ``Library``.  ``lib`` is the
    library last used.  A library named, detected, or proven by ``fn`` returning its arrays is
    used for every call, ``gradient`` included; one that merely took a call when tried (NumPy,
    say) is only tried first next time."""

    def __init__(self, fn: Callable, library_name: "str | Library" = "auto"):
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self._named = library_name != "auto"
        if isinstance(library_name, Library):
            self._known = library_name
        elif library_name == "auto":
            found = detect(fn)
            self._known = installed(found) if found else None
        else:
            self._known = library(library_name)
        self.lib = self._known

    def _convert(self, lib: Library, args) -> list:
        natives = []
        for a in args:
            try:
                t = lib.native(a)
                seen = np.asarray(lib.numpy(t))
            except Exception as exc:
                raise ConversionError(f"{lib.name} cannot take the {a.dtype} input of {self.__name__}: "
                                      f"{type(exc).__name__}: {exc}") from None
            changed = _same_bits(a, seen)
            if changed:
                raise ConversionError(f"the input {self.__name__} would see in {lib.name} is not the "
                                      f"audited input: {changed}{lib.hint(a, seen)}")
            natives.append(t)
        return natives

    def _run(self, lib: Library, args, kwargs, body):
        """``body(lib, natives, kwargs)`` on ``args`` converted to ``lib``, the result back in
        NumPy (from NumPy itself: as returned); our input arrays restored (and a warning
        recorded) if the callable wrote into them."""
        if lib.name == "numpy":
            return body(lib, list(args), kwargs)
        natives = self._convert(lib, args)
        kept = [a.copy() for a in args] if lib.shares_input_memory() else None
        try:
            result = body(lib, natives, kwargs)
        finally:
            if kept is not None:
                for a, k in zip(args, kept, strict=True):
                    if _same_bits(k, a):
                        np.copyto(a, k)
                        warnings.warn(f"{self.__name__} wrote into its input; the audit restored it",
                                      RuntimeWarning, stacklevel=2)
        return to_numpy(result, lib)

    def _candidates(self, differentiable: bool):
        # a generator: a framework is imported (seconds, for torch or JAX) only when every
        # library before it refused the call
        if self._known is not None:
            yield self._known
            return
        tried = self.lib if self.lib is not None and (self.lib.differentiable or not differentiable) \
            else None
        if tried is not None:
            yield tried
        for name in (FRAMEWORKS if differentiable else ("numpy", *FRAMEWORKS)):
            lib = installed(name)
            if lib is not None and lib is not tried and (lib.differentiable or not differentiable):
                yield lib

    def _dispatch(self, args, kwargs, body, differentiable=False):
        """Run ``body`` in the known library, or find it: NumPy first, then each installed
        framework; the first error is the one reported when none takes the call."""
        first = None
        for lib in self._candidates(differentiable):
            try:
                result = self._run(lib, args, kwargs, body)
            except Exception as exc:
                if self._known is not None:
                    raise
                first = first or exc
                # only a refusal of the array type means "another library": anything else is
                # the callable's own failure, reported as it is
                if not isinstance(exc, TypeError | AttributeError | ConversionError):
                    raise
                continue
            owner = owner_of(result) if lib.name == "numpy" else None
            if owner is not None and not self._named:
                # jax.nn.*, jnp.* or NumPy times a framework array take NumPy input and answer
                # in their framework: rerun there, so that the input reaches it checked bit for
                # bit (float64 without JAX's x64 is an error with the fix, not float32 numbers)
                # and its autograd serves ``gradient``
                self._known = self.lib = owner
                return self._run(owner, args, kwargs, body)
            self.lib = lib
            return result if owner is None else to_numpy(result, owner)  # NumPy named: as it asked
        if first is None:
            raise ConversionError("autograd needs torch or JAX installed")
        raise first

    def _prepare(self, args, kwargs, body, differentiable) -> tuple[Library, list]:
        if self._known is None:  # found as the audit finds it: by a checked call
            self._dispatch(args, kwargs, body, differentiable)
        lib = self._known or self.lib
        return lib, (list(args) if lib.name == "numpy" else self._convert(lib, args))

    def _call(self, lib, natives, kwargs):
        return self.fn(*natives, **kwargs)

    def __call__(self, *args, **kwargs):
        return self._dispatch(args, kwargs, self._call)

    def prepare(self, *args, **kwargs) -> tuple[Callable, list]:
        """``(call, natives)``, for timing: ``args`` in the callable's library, converted and
        checked bit for bit once, here (finding the library with one call, if need be), and
        ``call(*natives, **kwargs)``, ``fn`` itself on them, its result in its library, waited
        for where that computes asynchronously (JAX, CuPy)."""
        lib, natives = self._prepare(args, kwargs, self._call, False)
        if not lib.asynchronous:
            return self.fn, natives
        fn, ready = self.fn, lib.ready
        return (lambda *a, **kw: ready(fn(*a, **kw))), natives

    def gradient(self, wrt: int, cotangent: bool) -> "Autograd":
        """The derivative of ``fn`` by autograd, in our calling convention: with respect to
        positional input ``wrt`` (a ones cotangent: the elementwise derivative, d_a or d_b),
        or the vector-Jacobian product with the last positional argument (row-wise)."""
        return Autograd(self, wrt, cotangent)


class Autograd:
    """``ArrayCallable.gradient``: called like the forward (with the cotangent last, for a
    VJP), it runs in the forward's library, found and kept as the forward's is."""

    def __init__(self, forward: ArrayCallable, wrt: int, cotangent: bool):
        self.forward, self.wrt, self.cotangent = forward, wrt, cotangent
        self.__name__ = f"{forward.__name__} (autograd derivative)"

    @property
    def lib(self) -> Library | None:
        return self.forward.lib

    def _body(self, lib, natives, kwargs):
        n = len(natives) - int(self.cotangent)
        return lib.vjp(self.forward.fn, natives[:n], kwargs, self.wrt,
                       natives[n] if self.cotangent else None)

    def __call__(self, *args, **kwargs):
        return self.forward._dispatch(args, kwargs, self._body, differentiable=True)

    def prepare(self, *args, **kwargs) -> tuple[Callable, list]:
        """As ``ArrayCallable.prepare``: ``call`` runs the framework's autograd on natives."""
        lib, natives = self.forward._prepare(args, kwargs, self._body, True)
        body = self._body
        return (lambda *a, **kw: lib.ready(body(lib, a, kw))), natives
