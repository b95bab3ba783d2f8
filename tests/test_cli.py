"""The command line: listing, filters, exit codes 0/1/2, result files."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from actbench_ulp import cli
from actbench_ulp.core.budgets import DEFAULT_BUDGETS

REQUIRED = ["activation", "variant", "direction", "dtype", "domain", "n", "max_ulp", "p99_ulp",
            "mean_ulp", "max_abs", "max_rel", "special_mismatches", "worst_input",
            "worst_output", "worst_expected", "budget_max_ulp", "passed"]


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_list_names_everything():
    code, out, _ = run("list")
    assert code == 0
    for word in ["gelu_tanh", "accurate", "derivative", "float32", "thresholds", "relu'(0) = 0"]:
        assert word in out
    # every variant with its method, and the dtypes of those that take fewer than all
    assert "simd_f32_fast [float32 only]:" in out and "simd [float32, float64 only]:" in out
    sigmoid = next(line for line in out.splitlines() if line.startswith("sigmoid "))
    assert "accurate, simd, simd_f32, simd_f32_fast" in sigmoid


def test_a_variant_outside_its_dtypes_is_one_clear_error(tmp_path):
    code, _, err = run("audit", "--activation", "sigmoid", "--variant", "simd_f32_fast",
                       "--dtype", "float64", "--out", str(tmp_path))
    assert code == 2 and "simd_f32_fast takes float32 only" in err
    code, _, err = run("bench", "--activation", "relu", "--variant", "simd_f32", "--out", str(tmp_path))
    assert code == 2 and "select no catalog row" in err


def test_audit_passes_and_writes_table_and_metadata(tmp_path):
    code, out, _ = run("audit", "--activation", "sigmoid,relu", "--dtype", "float32", "--out", str(tmp_path))
    assert code == 0, out
    df = pd.read_csv(tmp_path / "audit.csv")
    assert list(df.columns[: len(REQUIRED)]) == REQUIRED
    # (sigmoid: accurate, simd, simd_f32, simd_f32_fast; relu: accurate, simd) × directions ×
    # domains
    assert len(df) == (4 + 2) * 2 * 4
    meta = json.loads((tmp_path / "audit.json").read_text())
    assert meta["schema_version"] == 1 and meta["versions"]["numba"] and "model" in meta["cpu"]
    assert "commit" in meta and meta["rows"] == 48
    assert meta["compiler_target"]["vector_bits"] in (128, 256, 512) and "peers" in meta


def test_audit_exits_1_when_a_row_leaves_its_budget(tmp_path):
    tight = DEFAULT_BUDGETS.read_text() + "\n[sigmoid.accurate.forward]\nfloat32 = 0.1\n"
    (tmp_path / "b.toml").write_text(tight)
    code, out, _ = run("audit", "--activation", "sigmoid", "--dtype", "float32", "--direction",
                       "forward", "--domain", "core", "--budgets", str(tmp_path / "b.toml"),
                       "--out", str(tmp_path))
    assert code == 1
    assert out.startswith("FAIL sigmoid.accurate.forward float32 core: max ")
    assert "> budget 0.1" in out and "\n    x=0x" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["audit", "--activation", "gleu"], "unknown activation 'gleu'; known: relu, relu6"),
    (["audit", "--dtype", "float128"],
     "unknown dtype 'float128'; known: float32, float64, float16, bfloat16"),
    (["audit", "--domain", "exhaustive", "--dtype", "float64"],
     "the exhaustive domain needs dtype float32, float16, bfloat16 (float64 has 2**64 inputs)"),
    (["audit", "--domain", "exhaustive", "--sweep-stride", "0"],
     "--sweep-stride must be a whole number of at least 1, got 0"),
    (["audit", "--impl", "numpy"], "unknown implementation 'numpy'; known: ours, numpy-seed"),
    (["audit", "--impl", "nosuchmodule:f", "--activation", "gelu"], "cannot import 'nosuchmodule'"),
    (["audit", "--impl", "math:erf"], "give exactly one --activation"),
    (["audit", "--regressions", __file__], "not a regression file"),
    (["audit", "--activation", "relu", "--out", "/proc/no/such"], "--out '/proc/no/such' is not a "
     "writable directory"),
    (["audit", "--activation", "relu", "--cache", "/dev/null/x"], "is not a writable directory"),
    (["audit", "--activation", "softmax", "--dtype", "float16"], "nothing to audit"),
    (["audit", "--budgets", "/"], "cannot read the budget file"),
    (["audit", "--domain", "huge"], "unknown domain 'huge'"),
    (["audit", "--points", "0"], "--points must be a whole number of at least 1, got 0"),
])
def test_usage_errors_exit_2_naming_the_problem(argv, message):
    code, _, err = run(*argv)
    assert code == 2 and message in err


def test_malformed_budget_file_exits_2_and_keeps_previous_results(tmp_path):
    (tmp_path / "audit.csv").write_text("previous results\n")
    (tmp_path / "b.toml").write_text("[gelu.accurate.forward\n")
    code, _, err = run("audit", "--budgets", str(tmp_path / "b.toml"), "--out", str(tmp_path))
    assert code == 2 and "not valid TOML" in err
    assert (tmp_path / "audit.csv").read_text() == "previous results\n"


def test_console_script_help(tmp_path):
    # the installed console script, as a user runs it, outside the checkout (tests/test_console.py
    # runs it for real)
    script = Path(sys.executable).with_name("actbench")
    if not script.exists():  # tests/test_console.py says why it must be there
        pytest.skip(f"no console script beside {sys.executable}")
    r = subprocess.run([str(script), "audit", "--help"], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 0 and "--activation" in r.stdout and "Exit 0" in r.stdout


def test_malformed_regression_entries_are_usage_errors(tmp_path):
    bad = [{"activation": "gelu", "direction": "forward", "dtype": "float64", "input": {"y": "0x1p+0"}},
           {"activation": "gelu", "direction": "forward", "dtype": "float33", "input": {"x": "0x1p+0"}},
           {"activation": "gelu", "direction": "forward", "dtype": "float64", "input": {"x": 1.5}},
           {"activation": "gelx", "direction": "forward", "dtype": "float64", "input": {"x": "0x1p+0"}}]
    for entry, message in zip(bad, ["input needs x", "unknown dtype", "hex floats",
                                    "unknown activation"], strict=True):
        f = tmp_path / "r.json"
        f.write_text(json.dumps({"schema_version": 1, "entries": [entry]}))
        code, _, err = run("audit", "--activation", "relu", "--regressions", str(f))
        assert code == 2 and message in err, err


def test_an_implementation_that_fails_everywhere_still_shows_in_the_table(tmp_path):
    code, out, _ = run("audit", "--activation", "relu", "--dtype", "float32", "--impl", "ours",
                       "--impl", "tests.userkernels:raising_gelu", "--out", str(tmp_path))
    assert code == 1
    table_lines = [ln for ln in out.splitlines() if "userkernels" in ln and "FAIL" not in ln]
    assert table_lines, out  # its summary line, with an errors count


def test_the_terminal_shows_one_line_per_activation_and_verbose_every_kernel(tmp_path):
    # passing rows: no FAIL lines, a header and a line per activation, then where they all are
    # (the default audit's 24 activations fit a terminal); --verbose: a line per kernel
    args = ["audit", "--activation", "relu,hardtanh", "--dtype", "float32", "--domain",
            "special,core", "--out", str(tmp_path)]
    code, out, _ = run(*args)
    lines = out.strip().splitlines()
    assert code == 0 and "FAIL" not in out
    assert lines[0].split()[:3] == ["activation", "rows", "failed"]
    assert [line.split()[0] for line in lines[1:3]] == ["relu", "hardtanh"]
    assert lines[3] == "" and "(every row; --verbose prints a line for each kernel)" in lines[4]
    code, verbose, _ = run(*args, "--verbose")
    kernels = [line for line in verbose.splitlines() if line.split()[:1] in (["relu"], ["hardtanh"])]
    assert code == 0 and len(kernels) == 2 * 2 * 2  # accurate and simd, forward and derivative


def test_the_one_line_per_activation_keeps_absent_ones_and_ranks_failures_first():
    from actbench_ulp.accuracy import table
    from actbench_ulp.accuracy.row import COLUMNS

    def row(activation, impl, status, max_ulp, passed, budget=1.0):
        r = dict.fromkeys(COLUMNS, "")
        r.update(activation=activation, impl=impl, variant="-" if impl != "ours" else "accurate",
                 direction="forward", dtype="float32", domain="core", status=status,
                 max_ulp=max_ulp, budget_max_ulp=budget, passed=passed, special_mismatches=0,
                 worst_input="0x1p+0", worst_points="[]")
        return r

    df = pd.DataFrame([
        row("gelu", "ours", "ok", 0.9, True),  # nearer its budget than the failing row
        row("gelu", "mine", "wrong_dtype", 0.5, False),  # fails within the budget: it is shown
        row("reglu", "scipy", "absent", float("nan"), None),  # scipy has no reglu at all
    ])
    lines = table.by_activation(df).set_index("activation")
    assert lines.loc["gelu", "worst row"].startswith("[mine] ") and lines.loc["gelu", "failed"] == 1
    assert lines.loc["reglu", "rows"] == 0 and lines.loc["reglu", "absent"] == 1
    assert table.render(df.iloc[:0]).strip() == "no rows"
