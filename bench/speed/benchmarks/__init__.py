"""The pytest-benchmark suite (run by ``actbench bench``; not part of the default test run)."""
