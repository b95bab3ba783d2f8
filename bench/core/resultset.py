"""Reading a results directory back: the audit table and the raw timing samples, checked.

A result set is what ``actbench audit`` and ``actbench bench`` wrote into one directory:
``audit.csv`` + ``audit.json`` and/or ``speed-raw.json`` (pytest-benchmark's JSON, every
round's time kept) + ``speed.json``. Anything missing, unreadable or of another schema is a
``ResultsError`` naming the file and what is wrong with it.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from actbench_ulp.core.errors import ResultsError
from actbench_ulp.core.results import SCHEMA_VERSION

__all__ = ["ACCURACY_KEY", "SPEED_KEY", "ResultSet", "ResultsError", "load", "read_audit"]

ACCURACY_KEY = ["impl", "activation", "variant", "direction", "dtype", "domain"]
SPEED_KEY = ["impl", "activation", "variant", "direction", "dtype", "size", "threads"]
_AUDIT_NEEDS = [*ACCURACY_KEY, "max_ulp", "special_mismatches", "budget_max_ulp", "status",
                "budget_reason", "error", "worst_points"]
_INFO_NEEDS = ["impl", "activation", "variant", "direction", "dtype", "size", "bytes", "threads"]


@dataclass
class ResultSet:
    path: Path
    audit: pd.DataFrame | None = None
    audit_meta: dict | None = None
    # one row per benchmark and run (``repeat``): SPEED_KEY, bytes, max_ulp, the yardsticks
    # timed beside it (copy_s, cpu_s; NaN in older files) and every round's time (samples)
    speed: pd.DataFrame | None = None
    speed_meta: dict | None = None
    speed_raw: dict | None = None  # pytest-benchmark's JSON as read (for ``speed.speed_table``)

    @property
    def label(self) -> str:
        meta = self.audit_meta or self.speed_meta or {}
        commit = (meta.get("commit") or "no commit")[:10] + ("+dirty" if meta.get("dirty") else "")
        return f"{self.path} ({commit}, {meta.get('created', 'unknown time')})"

    @property
    def machine(self) -> str | None:
        meta = self.speed_meta or self.audit_meta or {}
        cpu = meta.get("cpu") or {}
        return f"{cpu.get('model', '?')}, {cpu.get('logical_cores', '?')} cores" if cpu else None


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object")
    return data


def _meta(path: Path) -> dict:
    meta = _json(path) if path.exists() else {}
    version = meta.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ResultsError(f"{path}: schema version {version!r}, this actbench reads {SCHEMA_VERSION}")
    return meta


def read_audit(path) -> pd.DataFrame:
    """An ``audit.csv``, its numbers parsed; a ``ResultsError`` naming the file where it cannot
    be read or is not an audit table."""
    path = Path(path)
    try:
        df = pd.read_csv(path, keep_default_na=False, dtype=str)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from None
    missing = [c for c in _AUDIT_NEEDS if c not in df.columns]
    if missing:
        raise ResultsError(f"{path} is not an audit table: no column(s) {', '.join(missing)}")
    for col in ("max_ulp", "budget_max_ulp", "special_mismatches"):
        values = pd.to_numeric(df[col].replace("", np.nan), errors="coerce")
        bad = values.isna() & (df[col] != "")
        if bad.any():
            raise ResultsError(f"{path}: column {col} has a non-number {df[col][bad].iloc[0]!r} "
                               f"(line {bad.idxmax() + 2})")
        df[col] = values
    df["special_mismatches"] = df["special_mismatches"].fillna(0).astype(int)
    dup = df.duplicated(ACCURACY_KEY)
    if dup.any():
        raise ResultsError(f"{path}: row {dict(df.loc[dup.idxmax(), ACCURACY_KEY])} appears twice")
    return df


def _speed(path: Path) -> tuple[pd.DataFrame, dict]:
    raw = _json(path)
    benches = raw.get("benchmarks")
    if not isinstance(benches, list):
        raise ResultsError(f"{path} is not pytest-benchmark JSON: no 'benchmarks' list")
    rows = []
    for b in benches:
        name = b.get("name", "?") if isinstance(b, dict) else "?"
        info = b.get("extra_info") if isinstance(b, dict) else None
        stats = b.get("stats") if isinstance(b, dict) else None
        data = stats.get("data") if isinstance(stats, dict) else None
        if not isinstance(info, dict) or any(k not in info for k in _INFO_NEEDS):
            raise ResultsError(f"{path}: benchmark {name} lacks the actbench extra_info "
                               f"({', '.join(_INFO_NEEDS)}); was it written by actbench bench?")
        if not isinstance(data, list) or not data:
            raise ResultsError(f"{path}: benchmark {name} has no raw samples (stats.data)")
        try:
            samples = np.asarray(data, dtype=float)
            for k in ("size", "threads", "bytes", "repeat"):
                int(info.get(k, 0))
        except (TypeError, ValueError):
            raise ResultsError(f"{path}: benchmark {name} has a non-number in its samples or in "
                               "size, threads, bytes or repeat") from None
        if not np.all(np.isfinite(samples) & (samples > 0)):
            raise ResultsError(f"{path}: benchmark {name} has a non-positive or non-finite sample")
        refs = {k: float(info[k]) if isinstance(info.get(k), int | float) else np.nan
                for k in ("copy_s", "cpu_s")}
        rows.append({**{k: info[k] for k in _INFO_NEEDS}, "max_ulp": info.get("max_ulp"),
                     "repeat": int(info.get("repeat", 0)), **refs, "samples": samples})
    df = pd.DataFrame(rows, columns=[*_INFO_NEEDS, "max_ulp", "repeat", "copy_s", "cpu_s",
                                     "samples"])
    df[["size", "threads", "bytes"]] = df[["size", "threads", "bytes"]].astype(int)
    dup = df.duplicated([*SPEED_KEY, "repeat"])
    if dup.any():
        raise ResultsError(f"{path}: benchmark {dict(df.loc[dup.idxmax(), SPEED_KEY])} appears "
                           "twice in one run")
    return df, raw


def load(path) -> ResultSet:
    """The result set in directory ``path`` (accuracy, speed or both)."""
    path = Path(path)
    if not path.is_dir():
        raise ResultsError(f"{path} is not a directory of results")
    rs = ResultSet(path)
    if (path / "audit.csv").exists():
        rs.audit, rs.audit_meta = read_audit(path / "audit.csv"), _meta(path / "audit.json")
    if (path / "speed-raw.json").exists():
        rs.speed, rs.speed_raw = _speed(path / "speed-raw.json")
        rs.speed_meta = _meta(path / "speed.json")
    if rs.audit is None and rs.speed is None:
        raise ResultsError(f"{path} holds no results: neither audit.csv (actbench audit) nor "
                           "speed-raw.json (actbench bench)")
    return rs
