"""The HTML and Markdown report built from stored results.

It owns the report's assembly and output (``build``), its accuracy and speed figures
(``figures``), the table of our fastest variant within the accuracy target (``speed_best``), and
the seed report's findings measured on our kernels (``seed_findings``) with its figures redrawn
(``seed_figures``).  It imports ``actbench_ulp.gate``, ``actbench_ulp.speed``, ``actbench_ulp.accuracy``
and ``actbench_ulp.core``.
"""
