"""Auditing implementations beside ours: a user's own kernel (good, wrong, raising,
promoting, warning), the seed notebook's formulas, SciPy, and torch when installed."""

import dataclasses
import importlib.util
import io
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from actbench_ulp import cli

sys.path.insert(0, str(Path(__file__).parent))  # tests/userkernels.py as a user's module


def run(tmp_path, *argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["audit", "--out", str(tmp_path), "--no-cache", "--jobs", "1", *argv],
                    out=out, err=err)
    df = pd.read_csv(tmp_path / "audit.csv", keep_default_na=False)
    return code, out.getvalue(), err.getvalue(), df


def user_rows(df, spec):
    return df[df["impl"] == spec]


def test_a_good_user_kernel_passes(tmp_path):
    code, out, _, df = run(tmp_path, "--activation", "gelu", "--direction", "forward",
                           "--impl", "userkernels:good_gelu")
    rows = user_rows(df, "userkernels:good_gelu")
    assert code == 0, out
    # dtypes × quick domains, and float64's search (float32's is the exhaustive sweep)
    assert len(rows[rows["domain"] != "regressions"]) == 2 * 4 + 1
    assert (rows["status"] == "ok").all()


def test_a_wrong_user_kernel_is_caught_with_its_worst_input(tmp_path):
    code, out, _, df = run(tmp_path, "--activation", "gelu", "--direction", "forward",
                           "--dtype", "float32", "--impl", "ours", "--impl",
                           "userkernels:naive_gelu")
    assert code == 1
    rows = user_rows(df, "userkernels:naive_gelu")
    core = rows[rows["domain"] == "core"].iloc[0]
    assert core["status"] == "failed" and float(core["max_ulp"]) > 1e6
    assert float.fromhex(core["worst_input"]) < -5  # deep in the tail, where 1 + erf is 0
    assert "FAIL [userkernels:naive_gelu] gelu.-.forward float32 core: max" in out
    ours = df[df["impl"] == "ours"]
    assert (ours["status"] == "ok").all()  # the comparison keeps our rows beside it


def test_a_raising_user_kernel_is_reported_in_its_row(tmp_path):
    code, _out, _, df = run(tmp_path, "--activation", "gelu", "--direction", "forward",
                           "--impl", "userkernels:raising_gelu")
    rows = user_rows(df, "userkernels:raising_gelu")
    assert code == 1 and (rows["status"] == "error").all()
    assert (rows["error"] == "RuntimeError: not implemented for this input").all()


def test_a_user_kernel_returning_float64_for_float32_is_rounded_measured_and_failed(tmp_path):
    code, out, _, df = run(tmp_path, "--activation", "gelu", "--direction", "forward",
                           "--dtype", "float32", "--impl", "userkernels:promoting_gelu")
    rows = user_rows(df, "userkernels:promoting_gelu")
    assert code == 1 and (rows["status"] == "wrong_dtype").all() and not rows["passed"].any()
    assert (rows["error"] == "promoting_gelu returned float64 for float32 input; rounded to float32 "
                             "and audited").all()
    core = rows[rows["domain"] == "core"].iloc[0]
    # x·ndtr(x) in float64, rounded once: within float32's half ULP of the exact gelu, so only
    # its dtype fails it
    assert float(core["max_ulp"]) <= 0.5 + 1e-6
    assert "FAIL [userkernels:promoting_gelu] gelu.-.forward float32 core: promoting_gelu returned" in out


def test_warnings_are_recorded_not_raised(tmp_path):
    code, _, _, df = run(tmp_path, "--activation", "gelu", "--direction", "forward",
                         "--dtype", "float64", "--impl", "userkernels:warning_gelu")
    rows = user_rows(df, "userkernels:warning_gelu")
    assert code == 0 and (rows["warnings"] == "UserWarning: approximate result").all()


def test_user_derivative_and_absent_directions(tmp_path):
    _code, _, _, df = run(tmp_path, "--activation", "gelu", "--dtype", "float64", "--impl",
                         "userkernels:good_gelu", "--impl-derivative", "userkernels:good_gelu")
    rows = user_rows(df, "userkernels:good_gelu")
    # a forward function passed as the derivative is wrong everywhere: caught, not absent
    assert (rows[rows["direction"] == "derivative"]["status"] == "failed").all()


def test_seed_and_scipy_side_by_side(tmp_path):
    _code, out, _, df = run(tmp_path, "--activation", "sigmoid", "--impl", "ours",
                           "--impl", "numpy-seed", "--impl", "scipy")
    assert set(df["impl"]) == {"ours", "numpy-seed", "scipy"}
    scipy_d = df[(df["impl"] == "scipy") & (df["direction"] == "derivative")]
    assert (scipy_d["status"] == "absent").all()  # scipy.special has no sigmoid'
    seed_f = df[(df["impl"] == "numpy-seed") & (df["direction"] == "forward")]
    assert (seed_f["status"] != "absent").all()
    assert "absent" in out


def test_seed_softmax_returns_float64_for_float32(tmp_path):
    # the notebook's softmax does np.asarray(z, dtype=float): reported and measured, not crashed
    _code, _, _, df = run(tmp_path, "--activation", "softmax", "--direction", "forward",
                         "--dtype", "float32", "--domain", "core", "--impl", "numpy-seed")
    row = df[df["impl"] == "numpy-seed"].iloc[0]
    assert row["status"] == "wrong_dtype" and "returned float64 for float32 input; rounded" in row["error"]
    assert float(row["max_ulp"]) >= 0  # a figure, where an error row had none


def test_seed_gelu_tanh_float32_shows_its_tail_error(tmp_path):
    # its float64 result used to hide behind an error row; rounded to float32 and audited, the
    # tanh form's flush to 0 in the negative tail shows (1.7e7 ULP measured there)
    code, _, _, df = run(tmp_path, "--activation", "gelu_tanh", "--dtype", "float32",
                         "--domain", "core", "--points", "200", "--impl", "numpy-seed")
    fwd = df[df["direction"] == "forward"].iloc[0]
    assert code == 1 and fwd["status"] == "wrong_dtype" and float(fwd["max_ulp"]) >= 1e6
    assert float.fromhex(fwd["worst_input"]) < -5


def test_torch_missing_is_skipped_with_a_message(tmp_path, monkeypatch):
    # torch made unimportable for this test (CI installs it): scipy.stats, which looks for a
    # torch in sys.modules when imported, is imported first
    import actbench_ulp.gate.compare  # noqa: F401

    monkeypatch.setitem(sys.modules, "torch", None)
    code, _, err, df = run(tmp_path, "--activation", "relu", "--impl", "ours", "--impl", "torch")
    assert code == 0 and "torch is not installed" in err and set(df["impl"]) == {"ours"}


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="torch not installed (pip install -e '.[torch]')")
def test_torch_rows_when_installed(tmp_path):
    _code, _, _, df = run(tmp_path, "--activation", "gelu", "--impl", "ours", "--impl", "torch")
    torch_rows = df[df["impl"] == "torch"]
    assert len(torch_rows[torch_rows["domain"] != "regressions"]) == 2 * (2 * 4 + 1)
    core = torch_rows[(torch_rows["dtype"] == "float32") & (torch_rows["direction"] == "forward")
                      & (torch_rows["domain"] == "core")].iloc[0]
    # torch's 1 + erf cancels to 0 in the tail (below about -5.5), where gelu is not 0: the
    # whole value, 2**23 to 2**24 ULP of it (a float32 significand's count of steps)
    assert 2**23 <= float(core["max_ulp"]) < 2**24 and float.fromhex(core["worst_input"]) < -5
    assert core["worst_output"] in ("0.0", "-0.0")
    json.loads(core["worst_points"])


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="torch not installed (pip install -e '.[torch]')")
def test_the_torch_peer_gives_the_figures_of_its_direct_torch_calls():
    # the peer goes through actbench_ulp.core.arrays (ArrayCallable, autograd.grad); this is how it
    # called torch before (from_numpy, requires_grad_, backward): the rows must not move a bit
    # (float32 core, 300 points, torch 2.13.0 here: sigmoid 1.2599610290050107 and
    # 15027399.628750734 ULP, gelu 16636416.653159883 and 16476319.238672014)
    import numpy as np
    import torch

    from actbench_ulp.accuracy import audit
    from actbench_ulp.core import catalog, peers
    from actbench_ulp.core.budgets import load_budgets

    class Direct(peers.Impl):
        def kernel(self, case):
            f = {"sigmoid": torch.sigmoid, "gelu": torch.nn.functional.gelu}[case.activation.name]

            def direct(x, **params):
                t = torch.from_numpy(x).requires_grad_(case.direction == "derivative")
                y = f(t)
                if case.direction == "forward":
                    return y.detach().numpy()
                y.backward(torch.ones_like(y))
                return t.grad.numpy()

            return direct

    budgets, peer = load_budgets(), peers.resolve("torch")
    for case in catalog.cases(["sigmoid", "gelu"], None, ["forward", "derivative"]):
        rows = [audit.audit(case, "float32", "core", budgets, n=300, impl=impl) for impl in (peer, Direct())]
        assert rows[0]["error"] == "" and np.isfinite(rows[0]["max_ulp"]), case.label
        for col in ("max_ulp", "worst_input", "worst_output", "status"):
            assert rows[0][col] == rows[1][col], (case.label, col)


def test_a_peer_is_audited_once_beside_several_variants_of_ours(tmp_path):
    # sigmoid has four variants of ours (accurate, simd; simd_f32 and simd_f32_fast for
    # float32 only); a peer has one function for it, so it gets one row per direction, dtype
    # and domain
    code, out, _, df = run(tmp_path, "--activation", "sigmoid", "--domain", "special",
                           "--impl", "ours,numpy-seed")
    assert code == 0, out
    assert sorted(df[df["impl"] == "ours"]["variant"].unique()) == [
        "accurate", "simd", "simd_f32", "simd_f32_fast"]
    assert len(df[df["impl"] == "ours"]) == (2 + 2 + 1 + 1) * 2  # (variants × dtypes) × directions
    assert len(df[df["impl"] == "numpy-seed"]) == 2 * 2  # directions × dtypes


def test_every_spelling_in_the_catalog_is_an_expression_its_peer_can_run():
    """Each peer's spelling of each activation (``Activation.peers``), run on the numbers it
    should know: the seed's and SciPy's on NumPy, at the catalog's parameters; a spelling at
    parameter values the peer does not have (``only``) gives no kernel."""
    import numpy as np

    from actbench_ulp.core import catalog, peers

    seed, scipy_peer = peers.resolve("numpy-seed"), peers.resolve("scipy")
    x = np.array([-1.5, 0.25, 2.0])
    ran = 0
    for act in catalog.CATALOG.values():
        for impl in (seed, scipy_peer):
            for direction in act.peers.get(impl.name, {}):
                case = catalog.Case(act, act.variants[0], direction)
                f = impl.kernel(case)
                if act.kind == "gated":
                    y = f(x, x[::-1])
                elif act.kind == "rowwise":
                    y = f(x[None, :], temperature=2.0)
                else:
                    y = f(x, **act.params)
                assert np.all(np.isfinite(y)), (act.name, impl.name, direction, y)
                ran += 1
    assert ran == 33  # the seed's 23 spellings and SciPy's 10 (the tables they replaced), all ran
    softplus = catalog.Case(catalog.CATALOG["softplus"], catalog.CATALOG["softplus"].variants[0],
                            "forward")
    assert scipy_peer.kernel(softplus)(np.array([0.0]))[0] == np.log(2.0)
    other = dataclasses.replace(softplus.activation, params={"beta": 2.0})
    assert scipy_peer.kernel(catalog.Case(other, other.variants[0], "forward")) is None


def test_a_spelling_names_its_expression_in_the_rows_it_fails():
    from actbench_ulp.core.activation import Spelling

    f = Spelling("0.5 * (x + np.sqrt(x * x + b))").function({"np": __import__("numpy")}, ("x",),
                                                           {"b": 4.0})
    assert f.__name__ == "0.5 * (x + np.sqrt(x * x + b))"
    assert f(0.0) == 1.0 and f(0.0, b=16.0) == 2.0  # b defaults to the declared 4
