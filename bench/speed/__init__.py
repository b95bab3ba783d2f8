"""Timing: the pytest-benchmark suite (``benchmarks/test_speed.py``, run by ``actbench
bench`` in a fresh process) and the speed table made from its JSON (``timing``).

It sits beside the audit: it imports ``actbench.core`` (and the audit table's worst-error
lookup, so that each timing carries its kernel's max ULP).
"""
