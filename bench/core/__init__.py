"""The core layer: what every job shares and nothing above it redefines.

It owns the catalog (each activation with its variants, kernels, reference, parameters and
thresholds), the input domains, the exact values (mpmath, cached on disk), the error metrics
(ULPs at the exact value), the budgets, the implementations audited beside ours (peers and a
user's callables, framework arrays included), the regression inputs, the result files
(schema version, run metadata, atomic writes) and where parallel work runs (a local process
pool or a Dask cluster, ``executors``).  It imports only ``actbench_ulp.kernels`` and
``actbench_ulp.reference``; everything else in actbench imports it.
"""

# The distribution's name on PyPI (`pip install actbench-ulp`) and its import package
# (`actbench_ulp`): PyPI's "actbench" is another project, whose import package is actbench too.
# The command is `actbench` (and `actbench-ulp`, which no other project's install replaces).
DISTRIBUTION = "actbench-ulp"
