"""A user's callable in any array library, called with the audit's NumPy arrays.

The audit speaks NumPy; a callable may take and return torch tensors, JAX or CuPy arrays, or
any other DLPack / array-API object.  ``ArrayCallable`` converts the inputs to the callable's
library (named, or detected from the callable's module and the modules it uses, else by trying
NumPy and then each installed framework), and the results back, zero-copy where the library
allows.  The conversion is audited as well: the input the callable receives is converted back
and compared with ours bit for bit before the call, so a lossy conversion (JAX without x64
turning float64 into float32, a framework without float16) is an error row naming the
problem, never silently wrong numbers.  ``ArrayCallable.gradient`` differentiates the
callable with its framework's autograd (torch, JAX).
"""

import functools
import importlib
import importlib.util
import inspect
import types
import warnings
from collections.abc import Callable

import ml_dtypes
import numpy as np

__all__ = ["FRAMEWORKS", "ArrayCallable", "ConversionError", "Library", "library", "to_numpy"]

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
# tried in this order when a callable refuses NumPy arrays and names no library
FRAMEWORKS = ("torch", "jax", "cupy", "array_api_strict")
# module roots that mean "this callable works on NumPy arrays"
_NUMPY_ROOTS = {"numpy", "scipy", "numba", "ml_dtypes", "actbench", "builtins"}
_ROOT_ALIASES = {"jaxlib": "jax", "flax": "jax", "cupyx": "cupy"}


class ConversionError(RuntimeError):
    """An input cannot reach the callable's library unchanged, or its result cannot come back."""


class Library:
    """How arrays travel between NumPy and one array library."""

    name = "numpy"
    differentiable = False

    def native(self, a: np.ndarray):
        return a

    def numpy(self, t) -> np.ndarray:
        return np.asarray(t)

    def owns(self, obj) -> bool:
        return isinstance(obj, np.ndarray | np.generic)

    def shares_input_memory(self) -> bool:
        """Whether ``native`` hands the callable our own buffer (so it could write into it)."""
        return False

    def hint(self, ours: np.ndarray, seen: np.ndarray) -> str:
        return ""

    def vjp(self, fn, natives: list, kwargs: dict, wrt: int, cotangent):
        raise ConversionError(f"{self.name} has no autograd: give the derivative as a function, "
                              "or write the callable in torch or JAX")


class Torch(Library):
    name = "torch"
    differentiable = True

    def __init__(self):
        import torch

        self.torch = torch

    def native(self, a):
        torch = self.torch
        if not a.flags.writeable:
            a = a.copy()  # torch has no read-only tensors and warns on such an array
        if a.dtype == BFLOAT16:  # NumPy has no bfloat16: share the bits through int16
            return torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(torch.bfloat16)
        return torch.from_numpy(np.ascontiguousarray(a))

    def numpy(self, t):
        t = t.detach().cpu().resolve_conj().resolve_neg()
        if t.dtype == self.torch.bfloat16:
            return t.view(self.torch.int16).numpy().view(BFLOAT16)
        return t.numpy()

    def owns(self, obj):
        return isinstance(obj, self.torch.Tensor)

    def shares_input_memory(self):
        return True

    def vjp(self, fn, natives, kwargs, wrt, cotangent):
        torch = self.torch
        args = list(natives)
        args[wrt] = args[wrt].detach().requires_grad_(True)
        y = fn(*args, **kwargs)
        if not isinstance(y, torch.Tensor):
            raise ConversionError(f"autograd needs a tensor result, got {type(y).__name__}")
        if not y.requires_grad:  # a constant function: its derivative is zero
            return torch.zeros_like(args[wrt])
        (grad,) = torch.autograd.grad(y, args[wrt], torch.ones_like(y) if cotangent is None
                                      else cotangent, allow_unused=True)
        return torch.zeros_like(args[wrt]) if grad is None else grad


class Jax(Library):
    name = "jax"
    differentiable = True

    def __init__(self):
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp

    def native(self, a):
        return self.jnp.asarray(a)

    def owns(self, obj):
        return isinstance(obj, self.jax.Array)

    def hint(self, ours, seen):
        if ours.dtype == np.float64 and seen.dtype != np.float64 and not self.jax.config.jax_enable_x64:
            return ("; JAX runs with 64-bit floats disabled: enable them with "
                    'jax.config.update("jax_enable_x64", True) or JAX_ENABLE_X64=1')
        return ""

    def vjp(self, fn, natives, kwargs, wrt, cotangent):
        def along(v):
            args = list(natives)
            args[wrt] = v
            return fn(*args, **kwargs)

        y, pullback = self.jax.vjp(along, natives[wrt])
        return pullback(self.jnp.ones_like(y) if cotangent is None else cotangent)[0]


class Cupy(Library):
    name = "cupy"

    def __init__(self):
        import cupy

        self.cupy = cupy

    def native(self, a):
        return self.cupy.asarray(a)  # host to device: a copy is unavoidable

    def numpy(self, t):
        return self.cupy.asnumpy(t)

    def owns(self, obj):
        return isinstance(obj, self.cupy.ndarray)


class ArrayAPI(Library):
    """Any library with the array-API standard's ``asarray``/``from_dlpack`` (array-api-strict,
    dask.array, ndonnx, ...), named by its module."""

    def __init__(self, module: str):
        self.name = module
        self.xp = importlib.import_module(module)
        if not hasattr(self.xp, "asarray"):
            raise ValueError(f"module {module!r} is not an array library (it has no asarray)")

    def native(self, a):
        try:
            return self.xp.from_dlpack(a)  # zero-copy where the library takes NumPy's capsule
        except Exception:
            return self.xp.asarray(a)

    def numpy(self, t):
        return _generic_to_numpy(t)

    def owns(self, obj):
        return type(obj).__module__.split(".")[0] == self.name.split(".")[0]

    def shares_input_memory(self):
        return True


_CLASSES = {"numpy": Library, "torch": Torch, "jax": Jax, "cupy": Cupy}


@functools.cache
def library(name: str) -> Library:
    """The library called ``name``: numpy, torch, jax, cupy, or the module of an array-API
    library; ValueError naming what is wrong."""
    root = _ROOT_ALIASES.get(name, name)
    if importlib.util.find_spec(root.split(".")[0]) is None:
        raise ValueError(f"array library {name!r} is not installed")
    try:
        return _CLASSES[root]() if root in _CLASSES else ArrayAPI(root)
    except ImportError as exc:  # installed but broken (e.g. CuPy without a CUDA runtime)
        raise ValueError(f"cannot use array library {name!r}: {type(exc).__name__}: {exc}") from None


def _generic_to_numpy(obj) -> np.ndarray:
    if hasattr(obj, "__dlpack__"):
        try:
            return np.from_dlpack(obj)
        except Exception:  # e.g. a device NumPy cannot read, or a dtype DLPack cannot name
            pass
    return np.asarray(obj)


def to_numpy(obj, lib: Library | None = None):
    """A callable's result as a NumPy array; anything that is not an array is returned as is,
    for the audit to report."""
    if isinstance(obj, np.ndarray | np.generic):
        return obj
    if lib is not None and lib.owns(obj):
        return lib.numpy(obj)
    root = _root(type(obj).__module__)
    if root in _CLASSES and root != "numpy" and importlib.util.find_spec(root):
        try:
            lib = library(root)
        except ValueError:
            lib = None
        if lib is not None and lib.owns(obj):
            return lib.numpy(obj)
    if hasattr(obj, "__dlpack__") or hasattr(obj, "__array_namespace__") or hasattr(obj, "__array__"):
        return _generic_to_numpy(obj)
    return obj


def _root(module: str | None) -> str:
    root = (module or "").split(".")[0]
    return _ROOT_ALIASES.get(root, root)


def _library_of_module(module: str | None) -> str | None:
    root = _root(module)
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
    if own not in (None, "numpy") or _root(getattr(fn, "__module__", None)) in _NUMPY_ROOTS:
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

    ``library_name`` is "auto" (detect), a library's name, or a ``Library``.  The library
    found is kept, shared by ``gradient``."""

    def __init__(self, fn: Callable, library_name: "str | Library" = "auto"):
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        if isinstance(library_name, Library):
            self.lib = library_name
        elif library_name == "auto":
            found = detect(fn)
            self.lib = _installed(found) if found else None
        else:
            self.lib = library(library_name)

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

    def _run(self, lib: Library, args, body):
        """``body(natives)`` on ``args`` converted to ``lib``, the result back in NumPy; our
        input arrays restored (and a warning recorded) if the callable wrote into them."""
        if lib.name == "numpy":
            return body(list(args))
        natives = self._convert(lib, args)
        kept = [a.copy() for a in args] if lib.shares_input_memory() else None
        try:
            result = body(natives)
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
        if self.lib is not None:
            yield self.lib
            return
        if not differentiable:
            yield library("numpy")
        for name in FRAMEWORKS:
            lib = _installed(name)
            if lib is not None and (lib.differentiable or not differentiable):
                yield lib

    def _dispatch(self, args, body, differentiable=False):
        """Run ``body`` in the known library, or find it: NumPy first, then each installed
        framework; the first error is the one reported when none takes the call."""
        first = None
        for lib in self._candidates(differentiable):
            try:
                result = self._run(lib, args, lambda natives, lib=lib: body(lib, natives))
            except Exception as exc:
                if self.lib is not None:
                    raise
                first = first or exc
                # only a refusal of the array type means "another library": anything else is
                # the callable's own failure, reported as it is
                if not isinstance(exc, TypeError | AttributeError | ConversionError):
                    raise
                continue
            self.lib = lib
            return result
        if first is None:
            raise ConversionError("autograd needs torch or JAX installed")
        raise first

    def __call__(self, *args, **kwargs):
        return self._dispatch(args, lambda lib, natives: self.fn(*natives, **kwargs))

    def gradient(self, wrt: int, cotangent: bool) -> Callable:
        """The derivative of ``fn`` by autograd, in our calling convention: with respect to
        positional input ``wrt`` (a ones cotangent: the elementwise derivative, d_a or d_b),
        or the vector-Jacobian product with the last positional argument (row-wise)."""

        def derivative(*args, **kwargs):
            primals, ct = (args[:-1], args[-1]) if cotangent else (args, None)

            def body(lib, natives):
                n = len(primals)
                return lib.vjp(self.fn, natives[:n], kwargs, wrt, natives[n] if cotangent else None)

            return self._dispatch((*primals, *([ct] if cotangent else [])), body, differentiable=True)

        derivative.__name__ = f"{self.__name__} (autograd derivative)"
        return derivative


def _installed(name: str) -> Library | None:
    try:
        return library(name)
    except ValueError:
        return None
