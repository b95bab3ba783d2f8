"""Timing: the pytest-benchmark suite (``benchmarks/test_speed.py``, run by ``actbench
bench`` in a fresh process), the speed table made from its JSON and, with the audit, the
fastest of our variants within the accuracy target against torch and jax (``timing``), and a
long-lived timing process for the gate's alternation (``worker``; it imports nothing of
actbench but the catalog, being run under another revision's modules too).

It sits beside the audit: it imports ``actbench_ulp.core`` (and the audit table's worst-error
lookup, so that each timing carries its kernel's max ULP and each variant can be held to the
standard target).
"""
