"""How arrays travel between NumPy and one array library (torch, JAX, CuPy, any array-API
library), for ``actbench_ulp.core.arrays``: each ``Library`` converts both ways (zero-copy where
the library allows), says whether it owns an object, waits for an asynchronous result and
differentiates with its autograd where it has one.
"""

import functools
import importlib
import importlib.util

import numpy as np

from actbench_ulp.kernels._narrow import BFLOAT16

__all__ = ["FRAMEWORKS", "ROOT_ALIASES", "ArrayAPI", "ConversionError", "Cupy", "Jax", "Library", "Torch",
           "installed", "library", "owner_of", "root_of", "to_numpy"]

# tried in this order when a callable refuses NumPy arrays and names no library
FRAMEWORKS = ("torch", "jax", "cupy", "array_api_strict")
ROOT_ALIASES = {"jaxlib": "jax", "flax": "jax", "cupyx": "cupy"}


class ConversionError(RuntimeError):
    """An input cannot reach the callable's library unchanged, or its result cannot come back."""


class Library:
    """How arrays travel between NumPy and one array library."""

    name = "numpy"
    differentiable = False
    asynchronous = False  # a result may still be computing when returned: ``ready`` waits for it

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

    def ready(self, result):
        """``result`` once computed."""
        return result

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
    asynchronous = True

    def __init__(self):
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp

    def native(self, a, x64: bool = False):
        """``a`` as a JAX array; ``x64`` keeps float64 for this conversion only, whatever the
        global setting (as the JAX peer computes)."""
        if x64:
            with self.jax.enable_x64(True):
                return self.jnp.asarray(a)
        return self.jnp.asarray(a)

    def ready(self, result):
        return self.jax.block_until_ready(result)

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
    asynchronous = True

    def __init__(self):
        import cupy

        self.cupy = cupy

    def native(self, a):
        return self.cupy.asarray(a)  # host to device: a copy is unavoidable

    def numpy(self, t):
        return self.cupy.asnumpy(t)

    def owns(self, obj):
        return isinstance(obj, self.cupy.ndarray)

    def ready(self, result):
        self.cupy.cuda.get_current_stream().synchronize()
        return result


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


def library(name: str) -> Library:
    """The library called ``name``: numpy, torch, jax, cupy, or the module of an array-API
    library; ValueError naming what is wrong."""
    root = ROOT_ALIASES.get(name, name)
    # looked up on every call, not cached: a module made unimportable since (sys.modules[name]
    # = None, as a test of a missing framework does) is missing again
    if importlib.util.find_spec(root.split(".")[0]) is None:
        raise ValueError(f"array library {name!r} is not installed")
    return _library(root, name)


@functools.cache
def _library(root: str, name: str) -> Library:
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


def owner_of(obj) -> Library | None:
    """The installed framework (not NumPy) whose array ``obj`` is, if any."""
    root = root_of(type(obj).__module__)
    lib = installed(root) if root in FRAMEWORKS else None
    return lib if lib is not None and lib.owns(obj) else None


def to_numpy(obj, lib: Library | None = None):
    """A callable's result as a NumPy array; anything that is not an array is returned as is,
    for the audit to report."""
    if isinstance(obj, np.ndarray | np.generic):
        return obj
    if lib is None or not lib.owns(obj):
        lib = owner_of(obj)
    if lib is not None:
        return lib.numpy(obj)
    if hasattr(obj, "__dlpack__") or hasattr(obj, "__array_namespace__") or hasattr(obj, "__array__"):
        return _generic_to_numpy(obj)
    return obj


def root_of(module: str | None) -> str:
    """The top-level package of ``module``, jaxlib's, flax's and cupyx's named by their library."""
    root = (module or "").split(".")[0]
    return ROOT_ALIASES.get(root, root)


def installed(name: str) -> Library | None:
    """``library(name)``, or None where it is not installed or cannot be used."""
    try:
        return library(name)
    except ValueError:
        return None
