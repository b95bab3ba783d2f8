"""actbench: the numerical quality and speed of neural-network activation kernels.

Layers, each importing only those below it::

    cli, api, testing, pytest_plugin   commands, the Python API and the pytest plugin
    report                             the HTML / Markdown report
    gate                               comparing result sets, the CI gate
    accuracy                           the audit, its tables and sweeps
    speed (beside accuracy)            the benchmark suite and its tables
    core                               catalog, domains, exact values, metrics, budgets,
                                       peers, regressions, result files
    kernels, reference                 the Numba kernels and the mpmath references

``import actbench`` is cheap: nothing heavy (numba, mpmath, pandas) loads until a function
that needs it is called.
"""

__version__ = "0.1.0"
