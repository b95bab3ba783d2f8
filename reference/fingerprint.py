"""A fingerprint of a reference: what a cached exact value depends on.

The hash covers the source of the reference's own functions (its formula and its special
values), its data fields, the names of outside callables it holds (mpmath.tanh), every
module-level helper and constant its functions name in the reference package, recursively,
nested references (a gate) the same way, and the source of the rounding and evaluation
modules, which every value goes through.  Editing
``_gelu`` changes the fingerprints of gelu and geglu and of nothing else; editing
``rounding.py`` changes all of them.
"""

import hashlib
import inspect
import os
import sys
import types
from functools import cache

from . import evaluate as _evaluate
from . import rounding as _rounding

__all__ = ["fingerprint"]


_HERE = os.path.dirname(os.path.abspath(__file__))


def _is_source_function(f) -> bool:
    # only functions written in this package: dataclass-generated methods have no source
    return isinstance(f, types.FunctionType) and os.path.dirname(
        os.path.abspath(f.__code__.co_filename)) == _HERE


def _callable_name(f) -> str:
    # mpmath's functions are wrappers sharing one __qualname__; what they wrap is in their
    # closure (mpf_tanh, mpf_sinh), so its names are part of the description
    inner = [getattr(c.cell_contents, "__name__", "") for c in getattr(f, "__closure__", None) or ()
             if callable(c.cell_contents)]
    return f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', repr(f))}{inner}"


def _collect(obj, seen, parts):
    """Walk a reference: its class's methods, its function fields (formula, callable special
    values), its data fields (special values), the names of callables from elsewhere (e.g.
    mpmath.tanh), and nested references (a gated reference's gate) in the same way."""
    parts.append(f"<{type(obj).__qualname__}>")
    own = getattr(obj, "fingerprint_text", None)
    if callable(own):  # a reference written outside this package (a user's declaration)
        parts.append(own())  # describes it whole: its attributes' reprs hold addresses
        return
    for f in vars(type(obj)).values():
        if _is_source_function(f):
            _helpers(f, seen, parts)
    for name, value in sorted(vars(obj).items()):
        if _is_source_function(value):
            _helpers(value, seen, parts)
        elif hasattr(value, "__dataclass_fields__"):
            _collect(value, seen, parts)
        elif callable(value):
            parts.append(f"{name}={_callable_name(value)}")
        else:
            parts.append(f"{name}={value!r}")


def _helpers(fn, seen, parts):
    """fn, and what it names in its module: package functions (recursively) and constants."""
    if fn in seen:
        return
    seen[fn] = None
    module = sys.modules.get(fn.__module__)
    codes = [fn.__code__]
    while codes:
        code = codes.pop()
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        for name in code.co_names:
            if not hasattr(module, name):
                continue
            target = getattr(module, name)
            if _is_source_function(target):
                _helpers(target, seen, parts)
            elif isinstance(target, types.ModuleType):
                parts.append(f"{name}=<module {target.__name__}>")
            elif callable(target):
                parts.append(f"{name}={_callable_name(target)}")
            else:  # a module-level constant such as _GAUSS_TAIL
                parts.append(f"{fn.__module__}.{name}={target!r}")


@cache
def _module_source(module) -> str:
    return inspect.getsource(module)


@cache
def fingerprint(ref) -> str:
    seen, parts = {}, []
    _collect(ref, seen, parts)
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() + b"\n")
    for fn in seen:
        h.update(f"{fn.__module__}.{fn.__qualname__}\n".encode())
        h.update(inspect.getsource(fn).encode())
    for module in (_rounding, _evaluate):
        h.update(_module_source(module).encode())
    return h.hexdigest()
