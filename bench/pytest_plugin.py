"""The pytest plugin (entry point ``pytest11``): the ``actbench`` fixture and its options.

    def test_my_gelu(actbench):
        actbench.assert_accurate(my_gelu, "gelu", dtype="float32")

Options (command line, or the ini key in brackets)::

    --actbench-cache DIR      [actbench_cache]    exact-value cache (default: $ACTBENCH_CACHE,
                                                  else ~/.cache/actbench)
    --actbench-no-cache                           compute every exact value afresh
    --actbench-profile NAME   [actbench_profile]  quick or full: default domains and points
    --actbench-points N       [actbench_points]   random points per sampled domain
    --actbench-jobs N         [actbench_jobs]     processes computing exact values

An argument given in the test itself wins over these (leave ``points=`` out of a test to let
a nightly run pass ``--actbench-profile full``).

pytest loads this module in every run of an environment where actbench is installed, so it
imports only pytest and the standard library; the audit machinery (Numba, mpmath, pandas)
loads when a test first calls the fixture's ``audit`` or ``assert_accurate``.
"""

import os

import pytest

__all__ = ["Actbench", "actbench"]

_OPTIONS = ("cache", "profile", "points", "jobs")
_SETTINGS = pytest.StashKey[dict]()  # audit() keyword arguments the run's options set
_TALLY = pytest.StashKey[dict]()  # audits run and exact values cached / computed, for the summary


def pytest_addoption(parser):
    group = parser.getgroup("actbench", "actbench: accuracy audits of activation functions")
    group.addoption("--actbench-cache", metavar="DIR",
                    help="exact-value cache directory (default: $ACTBENCH_CACHE, else "
                         "~/.cache/actbench) [ini: actbench_cache]")
    group.addoption("--actbench-no-cache", action="store_true",
                    help="use no exact-value cache: compute every exact value afresh")
    group.addoption("--actbench-profile", metavar="NAME",
                    help="quick or full: the default domains and points [ini: actbench_profile]")
    group.addoption("--actbench-points", metavar="N",
                    help="random points per sampled domain [ini: actbench_points]")
    group.addoption("--actbench-jobs", metavar="N",
                    help="processes computing exact values [ini: actbench_jobs]")
    for name, what in [("cache", "exact-value cache directory, relative to the ini file"),
                       ("profile", "quick or full"), ("points", "random points per domain"),
                       ("jobs", "processes computing exact values")]:
        parser.addini(f"actbench_{name}", f"actbench: {what}", default="")


def _settings(config) -> dict:
    """audit() keyword arguments from the command line, else the ini file; checked here so a
    typo fails the run at once rather than in every test."""
    settings = {}
    for name in _OPTIONS:
        value = config.getoption(f"actbench_{name}")
        from_ini = value is None
        if from_ini:
            value = config.getini(f"actbench_{name}").strip() or None
        if value is None:
            continue
        where = f"ini actbench_{name}" if from_ini else f"--actbench-{name}"
        if name == "cache":
            base = config.inipath.parent if from_ini and config.inipath else config.invocation_params.dir
            value = os.path.join(base, os.path.expanduser(value))
        elif name == "profile":
            if value not in ("quick", "full"):
                raise pytest.UsageError(f"{where}: unknown profile {value!r}; known: quick, full")
        elif not value.isdigit() or int(value) < 1:
            raise pytest.UsageError(f"{where} takes a whole number of at least 1, got {value!r}")
        else:
            value = int(value)
        settings[name] = value
    if config.getoption("actbench_no_cache"):
        settings["cache"] = None
    return settings


def pytest_configure(config):
    config.stash[_SETTINGS] = _settings(config)
    config.stash[_TALLY] = {"audits": 0, "hits": 0, "misses": 0, "cache": None}


class Actbench:
    """The fixture's value: ``actbench.audit`` and ``actbench_ulp.testing.assert_accurate`` with
    the run's options as defaults."""

    def __init__(self, config):
        self._config = config

    @property
    def options(self) -> dict:
        """The audit() keyword arguments the run's options set."""
        return dict(self._config.stash[_SETTINGS])

    def audit(self, fn, activation, **kwargs):
        """``actbench.audit`` with the run's options as defaults; returns its DataFrame."""
        from actbench_ulp.api import audit

        return self._run(audit, fn, activation, kwargs)

    def assert_accurate(self, fn, activation, **kwargs):
        """``actbench_ulp.testing.assert_accurate`` with the run's options as defaults."""
        __tracebackhide__ = True
        from actbench_ulp.testing import assert_accurate

        return self._run(assert_accurate, fn, activation, kwargs)

    def _run(self, check, fn, activation, kwargs):
        __tracebackhide__ = True
        from actbench_ulp.api import DEFAULT_CACHE, resolve_cache

        options = {**self.options, **kwargs}
        # a Cache object of our own, resolved per call ($ACTBENCH_CACHE may be set by a fixture
        # of the project's), whose hits and misses the run's summary counts
        cache = options["cache"] = resolve_cache(options.get("cache", DEFAULT_CACHE))
        tally = self._config.stash[_TALLY]
        # a test may pass its own Cache to several calls: count only what this call added
        before = (cache.hits, cache.misses)
        try:
            return check(fn, activation, **options)
        finally:
            tally["audits"] += 1
            tally["hits"] += cache.hits - before[0]
            tally["misses"] += cache.misses - before[1]
            tally["cache"] = str(cache.directory) if cache.directory else None


@pytest.fixture
def actbench(pytestconfig) -> Actbench:
    """Audit functions against actbench's exact references: ``actbench.audit(fn, "gelu",
    dtype="float32")`` (a DataFrame) and ``actbench.assert_accurate(...)`` (AssertionError
    naming the worst inputs), with the ``--actbench-*`` options as defaults."""
    return Actbench(pytestconfig)


def pytest_terminal_summary(terminalreporter, config):
    tally = config.stash.get(_TALLY, None)
    if not tally or not tally["audits"]:
        return  # a run that used no audit prints nothing of ours
    where = f"cache {tally['cache']}" if tally["cache"] else "no cache"
    terminalreporter.write_line(
        f"actbench: {tally['audits']} audit(s); exact values {tally['hits']} cached, "
        f"{tally['misses']} computed ({where})")
