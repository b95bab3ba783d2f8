"""Tolerance budgets: loaded from one human-edited TOML file and checked against the catalog.

Layout (``bench/core/budgets.toml``): one table per activation.variant.direction, one key per
dtype, whose value is a max-ULP number, or an inline table with ``max_ulp``, a ``reason`` and
optional per-domain numbers::

    [gelu.accurate.derivative]
    float32 = 2
    float64 = { max_ulp = 4, core = 60, reason = "cancellation at the root of gelu'" }

A row the file does not list is held to the project's target for its dtype and direction
(``TARGETS``), so the file lists only what differs.  A number above the target must carry a
reason: budgets are never loosened silently, and the reason travels into the results table.
Unknown entries are errors (a typo must not leave a row held to the wrong number).
"""

import tomllib
from dataclasses import dataclass
from pathlib import Path

from actbench_ulp.core.catalog import CATALOG, DTYPES
from actbench_ulp.core.domains import DOMAINS, SIXTEEN_BIT

__all__ = ["DEFAULT_BUDGETS", "TARGETS", "Budget", "BudgetError", "Budgets", "load_budgets", "target"]

DEFAULT_BUDGETS = Path(__file__).with_name("budgets.toml")

# Targets in ULP of the dtype, the same in every dtype: what the accurate kernels must reach
# without a stated reason.  Every direction other than forward (derivatives, partials, VJPs)
# has the derivative target.
TARGETS = {
    ("float16", "forward"): 1.0,
    ("float16", "derivative"): 2.0,
    ("bfloat16", "forward"): 1.0,
    ("bfloat16", "derivative"): 2.0,
    ("float32", "forward"): 1.0,
    ("float32", "derivative"): 2.0,
    ("float64", "forward"): 1.0,
    ("float64", "derivative"): 2.0,
}


def target(dtype: str, direction: str) -> float:
    return TARGETS[(dtype, "forward" if direction == "forward" else "derivative")]


class BudgetError(ValueError):
    """The budget file is malformed, incomplete or names something unknown."""


@dataclass(frozen=True)
class Budget:
    max_ulp: float
    reason: str = ""


class Budgets:
    def __init__(self, table: dict, source: str):
        self._table = table  # (activation, variant, direction, dtype) -> {domain|None: Budget}
        self.source = source

    def get(self, activation: str, variant: str, direction: str, dtype: str, domain: str) -> Budget:
        """The row's budget: its entry, or the target where the file lists none."""
        entry = self._table.get((activation, variant, direction, dtype))
        if entry is None:
            return Budget(target(dtype, direction))
        return entry.get(domain, entry[None])

    def listed(self) -> list:
        """The (activation, variant, direction, dtype) keys the file lists."""
        return list(self._table)

    def get_any(self, activation, variant, direction, dtype, domain) -> Budget:
        """As ``get``; a 16-bit dtype without its own entry uses float32's numbers (the same
        budgets, counted in that dtype's ULPs)."""
        key = (activation, variant, direction, dtype)
        if dtype in SIXTEEN_BIT and key not in self._table:
            dtype = "float32"
        return self.get(activation, variant, direction, dtype, domain)


def _number(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise BudgetError(f"{where}: expected a non-negative number of ULP, got {value!r}")
    return float(value)


def _parse_entry(value, where, target) -> dict:
    if not isinstance(value, dict):
        value = {"max_ulp": value}
    unknown = set(value) - {"max_ulp", "reason", *DOMAINS}
    if unknown:
        raise BudgetError(
            f"{where}: unknown key(s) {sorted(unknown)}; allowed: max_ulp, reason, "
            f"{', '.join(DOMAINS)}"
        )
    if "max_ulp" not in value:
        raise BudgetError(f"{where}: missing max_ulp")
    reason = value.get("reason", "")
    if not isinstance(reason, str):
        raise BudgetError(f"{where}: reason must be a string")
    entry = {None: Budget(_number(value["max_ulp"], where), reason)}
    for domain in DOMAINS:
        if domain in value:
            entry[domain] = Budget(_number(value[domain], f"{where}.{domain}"), reason)
    loosest = max(b.max_ulp for b in entry.values())
    if loosest > target and not reason.strip():
        raise BudgetError(
            f"{where}: {loosest:g} ULP is above the target of {target:g} ULP; "
            "a looser budget needs a reason = \"...\" saying why"
        )
    return entry


def load_budgets(path=DEFAULT_BUDGETS) -> Budgets:
    """Read and validate a budget file against the catalog; raise BudgetError naming the
    offending entry."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BudgetError(f"{path}: budget file not found") from None
    except OSError as exc:
        raise BudgetError(f"{path}: cannot read the budget file: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BudgetError(f"{path}: not valid TOML: {exc}") from None
    table = {}
    for act_name, variants in raw.items():
        if act_name not in CATALOG:
            raise BudgetError(f"{path}: [{act_name}] is not an activation in the catalog")
        act = CATALOG[act_name]
        for var_name, directions in _tables(variants, f"{path}: {act_name}"):
            if var_name not in {v.name for v in act.variants}:
                raise BudgetError(f"{path}: {act_name}.{var_name}: no such variant")
            for direction, dtypes in _tables(directions, f"{path}: {act_name}.{var_name}"):
                if direction not in act.directions:
                    raise BudgetError(
                        f"{path}: {act_name}.{var_name}.{direction}: {act_name} is {act.kind}, "
                        f"its directions are {', '.join(act.directions)}"
                    )
                if not isinstance(dtypes, dict):
                    raise BudgetError(f"{path}: {act_name}.{var_name}.{direction}: expected a table")
                for dtype, value in dtypes.items():
                    where = f"{path}: {act_name}.{var_name}.{direction}.{dtype}"
                    if dtype not in (*DTYPES, *SIXTEEN_BIT):
                        raise BudgetError(
                            f"{where}: unknown dtype; known: {', '.join((*DTYPES, *SIXTEEN_BIT))}")
                    table[(act_name, var_name, direction, dtype)] = _parse_entry(
                        value, where, target(dtype, direction)
                    )
    return Budgets(table, str(path))


def _tables(value, where):
    if not isinstance(value, dict):
        raise BudgetError(f"{where}: expected a table, got {value!r}")
    return value.items()
