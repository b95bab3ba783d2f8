"""A fingerprint of a reference: what a cached exact value depends on.

The hash covers the source of the reference's own functions (its formula and its special
values), every module-level helper they call in the reference package, recursively, and the
source of the rounding and evaluation modules, which every value goes through.  Editing
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


def _functions_of(obj):
    """The plain functions an (elementwise, gated or row) reference is made of: its fields,
    its class's methods (``__call__`` applies the special values), and nested references."""
    out = [f for f in vars(type(obj)).values() if _is_source_function(f)]
    for value in vars(obj).values() if hasattr(obj, "__dict__") else ():
        if _is_source_function(value):
            out.append(value)
        elif hasattr(value, "__dataclass_fields__"):
            out += _functions_of(value)
    return out


def _helpers(fn, seen):
    """fn and the reference-package functions it names, recursively."""
    if fn in seen:
        return
    seen[fn] = None
    module = sys.modules.get(fn.__module__)
    codes = [fn.__code__]
    while codes:
        code = codes.pop()
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        for name in code.co_names:
            target = getattr(module, name, None)
            if _is_source_function(target):
                _helpers(target, seen)


@cache
def _module_source(module) -> str:
    return inspect.getsource(module)


@cache
def fingerprint(ref) -> str:
    seen = {}
    for fn in _functions_of(ref):
        _helpers(fn, seen)
    h = hashlib.sha256()
    h.update(repr(sorted((k, repr(v)) for k, v in vars(ref).items()
                         if not callable(v) and not hasattr(v, "__dataclass_fields__"))).encode())
    for fn in seen:
        h.update(f"{fn.__module__}.{fn.__qualname__}\n".encode())
        h.update(inspect.getsource(fn).encode())
    for module in (_rounding, _evaluate):
        h.update(_module_source(module).encode())
    return h.hexdigest()
