"""The accuracy audit: ``audit(case, dtype, domain) -> row`` and what is built on it.

It owns the audit call and its batches (``audit``), the result table and its rendering
(``table``), the exhaustive float32 sweeps (``sweeps``) and the per-point error curves the
report plots (``error_curves``).  It imports only ``actbench.core``.
"""
