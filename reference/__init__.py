"""High-precision mpmath references: exact values of every activation, rounded once."""

from .elementwise import REFERENCES, VERSION, ElementwiseReference
from .evaluate import Exact, ReferenceDisagreement, evaluate, working_precisions
from .rounding import FORMATS, FloatFormat, format_of, round_to_format

__all__ = [
    "FORMATS",
    "REFERENCES",
    "VERSION",
    "ElementwiseReference",
    "Exact",
    "FloatFormat",
    "ReferenceDisagreement",
    "evaluate",
    "format_of",
    "round_to_format",
    "working_precisions",
]
