"""The pytest plugin, as a user's project meets it: a throwaway project with its own package and
tests, run by pytest in a subprocess of this environment (where actbench is installed, so
pytest loads the plugin)."""

import os
import subprocess
import sys
import textwrap

import pytest

import actbench_ulp as actbench

# the user's package: a GELU rounded once from float64, and the textbook form in float32
PACKAGE = '''\
import numpy as np
from scipy.special import erf, erfc


def good_gelu(x):
    x64 = x.astype(np.float64)
    y = 0.5 * x64 * erfc(-x64 / np.sqrt(2.0))
    return np.where(np.isneginf(x64), -0.0, y).astype(x.dtype)  # -inf·0 would be NaN


def broken_gelu(x):
    return 0.5 * x * (1 + erf(x / np.sqrt(x.dtype.type(2))))
'''

TESTS = '''\
import pytest
from myacts import broken_gelu, good_gelu


@pytest.mark.parametrize("gelu", [good_gelu, broken_gelu])
def test_gelu(actbench, gelu):
    actbench.assert_accurate(gelu, "gelu", dtype="float32", domains=["special", "core"])
'''

POINTS = 200  # as tests/test_api.py: the session's cache then holds the core domain's values


def _pytest(project, *args):
    # the session's environment: its ACTBENCH_CACHE (tests/conftest.py) holds exact values the
    # other tests computed
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=project, env=dict(os.environ), capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "myacts").mkdir()
    (tmp_path / "myacts" / "__init__.py").write_text(PACKAGE)
    (tmp_path / "test_myacts.py").write_text(TESTS)
    monkeypatch.syspath_prepend(str(tmp_path))  # to audit the same functions here
    return tmp_path


def test_the_fixture_fails_the_broken_function_with_its_worst_inputs(project):
    (project / "pytest.ini").write_text(f"[pytest]\nactbench_points = {POINTS}\n")
    done = _pytest(project)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "1 failed, 1 passed" in out, out
    assert "FAILED test_myacts.py::test_gelu[broken_gelu]" in out, out
    assert "myacts:broken_gelu fails 2 of 2 audited rows" in out, out
    # the message names each failing domain's worst input, in hex, as an audit here finds it
    from myacts import broken_gelu

    df = actbench.audit(broken_gelu, "gelu", dtype="float32", domains=["special", "core"],
                        points=POINTS)
    for row in df.itertuples():
        assert f"{row.domain}: max {row.max_ulp:.4g} ULP" in out, out
        assert f"x={row.worst_input} got {row.worst_output} want {row.worst_expected}" in out, out
    assert "x=-0x1." in out  # the core domain's worst: a negative input, where 1 + erf cancels
    # the run's summary: both audits, the second from the cache the first filled
    assert "actbench: 2 audit(s); exact values 2 cached, 2 computed (cache " in out or \
        "actbench: 2 audit(s); exact values 4 cached, 0 computed (cache " in out, out


def test_the_plugin_is_loaded_in_every_run_and_costs_nothing_unused(tmp_path):
    (tmp_path / "test_free.py").write_text(textwrap.dedent('''\
        import sys


        def test_free(pytestconfig):
            assert pytestconfig.pluginmanager.hasplugin("actbench")
            assert pytestconfig.getoption("actbench_points") == "7"
            # nothing of ours beyond the plugin (so no kernel compiled), nor the audit's engines
            loaded = sorted(m for m in sys.modules
                            if m.split(".")[0] in {"numba", "mpmath"} or m.startswith("actbench_ulp."))
            assert loaded == ["actbench_ulp.pytest_plugin"], loaded
    '''))
    done = _pytest(tmp_path, "--actbench-points", "7")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "actbench:" not in done.stdout  # no summary line where no test audited


@pytest.mark.parametrize(("args", "message"), [
    (["--actbench-points", "0"], "--actbench-points takes a whole number of at least 1, got '0'"),
    (["--actbench-jobs", "two"], "--actbench-jobs takes a whole number of at least 1, got 'two'"),
    (["--actbench-profile", "thorough"], "--actbench-profile: unknown profile 'thorough'"),
    (["-o", "actbench_points=many"], "ini actbench_points takes a whole number"),
])
def test_a_bad_option_stops_the_run_at_once(tmp_path, args, message):
    done = _pytest(tmp_path, *args)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert message in done.stderr
