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

``import actbench_ulp`` is cheap: nothing heavy (numba, mpmath, pandas) loads until a function
that needs it is called.

From a project's own code and tests::

    import actbench_ulp as actbench

    actbench.audit(fn, "gelu", dtype="float32")       # the audit's rows, a DataFrame
    actbench.testing.assert_accurate(fn, "gelu", dtype="float32")   # AssertionError if not

and, with pytest, the ``actbench`` fixture of the plugin (``actbench_ulp.pytest_plugin``).
An activation actbench does not ship is declared with its mpmath reference::

    actbench.register(actbench.Declaration("squareplus", squareplus_exact, params={"b": 4.0}))

or by an installed package's entry point in the group ``actbench.activations``
(``actbench_ulp.core.declared``).
"""

__version__ = "0.1.0"
__all__ = ["Declaration", "__version__", "audit", "register", "testing"]


def __getattr__(name):
    # loaded on first use: the API imports the Numba kernels, which ``import actbench_ulp`` (done
    # by the pytest plugin in every pytest run) must not
    if name == "audit":
        from actbench_ulp.api import audit

        return audit
    if name in ("Declaration", "register"):
        from actbench_ulp.core import declared

        return getattr(declared, name)
    if name == "testing":
        import importlib

        return importlib.import_module("actbench_ulp.testing")
    raise AttributeError(f"module 'actbench_ulp' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
