"""Checking what an audit is asked for, the same way for the command line and the Python API:
names against the catalog's, counts, the domains a dtype has, and what to say when a
selection leaves nothing to audit.  Every problem is a ``ValueError`` with one message naming
it (the command line shows it as a usage error, exit status 2)."""

from collections.abc import Iterable

from actbench_ulp.core.domains import EXHAUSTIVE_DTYPES

__all__ = ["at_least_one", "check_domains", "nothing_to_audit", "pick"]


def pick(values, known: Iterable[str], what: str, of: str = "") -> list[str]:
    """Names given as one string or an iterable of strings, each of them comma-separated or
    not, checked against ``known``; in order, once each; [] when none is given."""
    known = list(known)
    if values is None:
        items = []
    elif isinstance(values, str) or not isinstance(values, Iterable):
        items = [values]  # a stray number is reported as an unknown name, not a TypeError
    else:
        items = list(values)
    names = [n.strip() for item in items for n in str(item).split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(map(repr, unknown))}{of}; "
                         f"known: {', '.join(known)}")
    return list(dict.fromkeys(names))


def at_least_one(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a whole number of at least 1, got {value!r}")
    return value


def check_domains(domains, dtypes) -> None:
    if "exhaustive" in domains and not set(dtypes) & set(EXHAUSTIVE_DTYPES):
        raise ValueError(f"the exhaustive domain needs dtype {', '.join(EXHAUSTIVE_DTYPES)} "
                         "(float64 has 2**64 inputs)")


def nothing_to_audit(selection) -> str:
    """Why a selection of catalog cases, dtypes and domains gave no row at all."""
    narrow = sorted({f"{c.variant.name} takes {', '.join(c.variant.dtypes)} only"
                     for c in selection if c.variant.dtypes})
    return ("nothing to audit: the selected activations have no row in these dtypes and domains "
            "(16-bit dtypes and the exhaustive domain are for elementwise activations; "
            + "".join(f"{n}; " for n in narrow)
            + "the regressions domain has entries only where something once failed)")
