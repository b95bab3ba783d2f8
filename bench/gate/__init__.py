"""Comparing result sets and the CI gate.

It owns the comparison of two result sets (accuracy exactly, speed with a rank test:
``compare``, ``stats``), the Markdown verdict (``summary``), the command lines the gate reruns
(``runs``) and the gate's noise experiment (``experiment``).  It imports ``actbench.accuracy``
and ``actbench.core``.
"""
