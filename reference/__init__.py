"""High-precision mpmath references: exact values of every activation, rounded once."""

from .elementwise import REFERENCES, VERSION, ElementwiseReference
from .evaluate import (
    MAX_PRECISION,
    Exact,
    ReferenceDisagreement,
    evaluate,
    evaluate_rows,
    working_precisions,
)
from .gated import GATED, GatedReference
from .rounding import FORMATS, FloatFormat, format_of, round_to_format
from .rowwise import ROWWISE, RowReference

__all__ = [
    "FORMATS",
    "GATED",
    "MAX_PRECISION",
    "REFERENCES",
    "ROWWISE",
    "VERSION",
    "ElementwiseReference",
    "Exact",
    "FloatFormat",
    "GatedReference",
    "ReferenceDisagreement",
    "RowReference",
    "evaluate",
    "evaluate_rows",
    "format_of",
    "round_to_format",
    "working_precisions",
]
