"""Comparing result sets and the CI gate.

It owns the comparison of two result sets (accuracy exactly, speed with a rank test:
``compare``, ``stats``), the Markdown verdict (``summary``), the command lines the gate reruns
(``runs``) and the gate against a git revision (``against``: the base built apart;
``alternate``: both versions timed benchmark by benchmark in alternation by two worker
processes).  It imports ``actbench_ulp.speed``, ``actbench_ulp.accuracy`` and
``actbench_ulp.core``.  The gate's noise experiment is a research script outside the package,
``tools/gate_experiment.py``.
"""
