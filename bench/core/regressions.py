"""The worst-input regression file: every input that ever broke a budget here, replayed by
every audit as the domain ``regressions`` so that a fixed bug stays fixed.

``regressions.json`` (beside this module: package data) is versioned with the code.  Entries
name the activation, direction and dtype and hold the input as hex floats (elementwise ``x``;
gated ``a``, ``b``; row-wise the whole ``row``, its upstream gradient ``g`` and ``tau``).  ``actbench audit
--record-regressions`` adds the worst inputs of our kernels' failing rows.
"""

import json
from datetime import date
from pathlib import Path

import numpy as np

from actbench_ulp.core.results import source_checkout, write_atomic

__all__ = ["DEFAULT_FILE", "SCHEMA_VERSION", "RegressionError", "Regressions",
           "regressions_file_is_installed"]

DEFAULT_FILE = Path(__file__).resolve().with_name("regressions.json")
SCHEMA_VERSION = 1


def regressions_file_is_installed(path) -> bool:
    """Whether ``path`` is the packaged file of an installed actbench (not of its checkout, where
    recording into it is how a regression becomes part of the project)."""
    return Path(path).resolve() == DEFAULT_FILE and source_checkout() is None


class RegressionError(ValueError):
    """The regression file is malformed."""


def _hex_ok(v) -> bool:
    try:
        float.fromhex(v)
    except (TypeError, ValueError):
        return False
    return True


def _check_entry(k, e):
    """Every entry names a catalog case and dtype and holds hex floats of the right shape."""
    from actbench_ulp.core.catalog import CATALOG, DTYPES
    from actbench_ulp.core.domains import SIXTEEN_BIT

    if not isinstance(e, dict):
        raise RegressionError(f"entry {k} is not an object")
    missing = {"activation", "direction", "dtype", "input"} - set(e)
    if missing:
        raise RegressionError(f"entry {k} lacks {sorted(missing)}")
    act = CATALOG.get(e["activation"])
    if act is None:
        raise RegressionError(f"entry {k}: unknown activation {e['activation']!r}")
    if e["direction"] not in act.directions:
        raise RegressionError(f"entry {k}: {act.name} has no direction {e['direction']!r}")
    if e["dtype"] not in (*DTYPES, *SIXTEEN_BIT):
        raise RegressionError(f"entry {k}: unknown dtype {e['dtype']!r}")
    inp = e["input"]
    fields = {"elementwise": ("x",), "gated": ("a", "b"), "rowwise": ("row", "g", "tau")}[act.kind]
    if not isinstance(inp, dict) or set(fields) - set(inp):
        raise RegressionError(f"entry {k}: a {act.kind} input needs {', '.join(fields)}")
    values = ([inp["x"]] if act.kind == "elementwise" else [inp["a"], inp["b"]]
              if act.kind == "gated" else [*inp["row"], *inp["g"]])
    if not all(_hex_ok(v) for v in values):
        raise RegressionError(f"entry {k}: inputs must be hex floats (float.hex)")
    if act.kind == "rowwise" and (len(inp["row"]) != len(inp["g"]) or not inp["row"]):
        raise RegressionError(f"entry {k}: row and g must be non-empty and of equal length")


def _floats(values):
    return [float.fromhex(v) if isinstance(v, str) else float(v) for v in values]


class Regressions:
    def __init__(self, path=DEFAULT_FILE):
        self.path = Path(path)
        self.entries = []
        if self.path.exists():
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                if not isinstance(raw, dict):
                    raise RegressionError("expected a JSON object")
                if raw.get("schema_version") != SCHEMA_VERSION:
                    raise RegressionError(f"schema_version {raw.get('schema_version')!r}, "
                                          f"expected {SCHEMA_VERSION}")
                self.entries = list(raw["entries"])
                for k, e in enumerate(self.entries):
                    _check_entry(k, e)
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError,
                    UnicodeDecodeError) as exc:
                raise RegressionError(f"{self.path}: not a regression file: {exc}") from None
            except OSError as exc:
                raise RegressionError(f"{self.path}: cannot read it: {exc.strerror or exc}") from None
            except RegressionError as exc:
                raise RegressionError(f"{self.path}: {exc}") from None

    def matching(self, case, dtype):
        return [e for e in self.entries if e["activation"] == case.activation.name
                and e["direction"] == case.direction and e["dtype"] == dtype]

    def elementwise(self, case, dtype) -> np.ndarray:
        return np.array([float.fromhex(e["input"]["x"]) for e in self.matching(case, dtype)],
                        dtype=dtype)

    def pairs(self, case, dtype):
        es = self.matching(case, dtype)
        return (np.array([float.fromhex(e["input"]["a"]) for e in es], dtype=dtype),
                np.array([float.fromhex(e["input"]["b"]) for e in es], dtype=dtype))

    def rows(self, case, dtype):
        """[(x (1, n), g (1, n), tau)] one per entry."""
        out = []
        for e in self.matching(case, dtype):
            inp = e["input"]
            out.append((np.array([_floats(inp["row"])], dtype=dtype),
                        np.array([_floats(inp["g"])], dtype=dtype), float(inp["tau"])))
        return out

    def add(self, case, dtype, point: dict, why: str) -> bool:
        entry = {"activation": case.activation.name, "direction": case.direction,
                 "dtype": dtype, "input": point["input"]}
        if any({k: e[k] for k in entry} == entry for e in self.entries):
            return False
        self.entries.append({**entry, "found": date.today().isoformat(), "why": why})
        return True

    def save(self):
        text = json.dumps({"schema_version": SCHEMA_VERSION, "entries": self.entries}, indent=1)
        write_atomic(self.path, text + "\n")
