"""The accuracy audit: ``audit(case, dtype, domain) -> row`` and what is built on it.

It owns the audit call and its batches (``audit``), the checks of what an audit is asked for
(``selection``), the result table and its rendering (``table``), the exhaustive float32
domain (``exhaustive`` schedules and merges a sweep, ``sweep_chunk`` measures one chunk,
``oracle`` holds the fast oracle's compiled measuring pass and its bound) and the per-point
error curves the report plots (``error_curves``).  It imports
``actbench_ulp.core`` (and, to round a result of the wrong dtype, ``actbench_ulp.kernels``' rounding).
"""
