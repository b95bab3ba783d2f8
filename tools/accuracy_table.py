"""The README's measured-accuracy table from an audit.csv: max ULP over every domain of the
accurate variant, per activation, dtype and direction; the budget where it is above the target.

    python tools/accuracy_table.py results/audit.csv
"""
import sys

import pandas as pd

from actbench_ulp.core.budgets import target
from actbench_ulp.core.catalog import CATALOG

d = pd.read_csv(sys.argv[1], keep_default_na=False)
d = d[(d["impl"] == "ours") & (d["variant"] == "accurate") & d["dtype"].isin(["float32", "float64"])]
d["max_ulp"] = pd.to_numeric(d["max_ulp"])
d["budget_max_ulp"] = pd.to_numeric(d["budget_max_ulp"])


def cell(act, dtype, direction):
    r = d[(d.activation == act) & (d.dtype == dtype) & (d.direction == direction)]
    m, b = r["max_ulp"].max(), r["budget_max_ulp"].max()
    s = f"{m:.3g}"
    return s + (f" (budget {b:g})" if b > target(dtype, direction) else "")


print("| activation | directions | f32 forward | f32 derivative(s) | f64 forward | f64 derivative(s) |")
print("|---|---|---:|---:|---:|---:|")
for name, act in CATALOG.items():
    dirs = act.directions
    others = dirs[1:]
    row = [name, ", ".join(dirs)]
    for dt in ("float32", "float64"):
        row.append(cell(name, dt, "forward"))
        row.append(" / ".join(cell(name, dt, o) for o in others))
    print("| " + " | ".join(row) + " |")
