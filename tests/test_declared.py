"""Activations declared outside actbench: the checks of a declaration, the values derived from its
reference, and the user guide's squareplus package (docs/guide/declare.md) built, installed and
audited as a user would."""

import math
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import mpmath
import numpy as np
import pytest

from actbench_ulp.core import declared
from actbench_ulp.core.declared import Declaration, DeclarationError, check
from actbench_ulp.reference import evaluate
from actbench_ulp.reference.fingerprint import fingerprint

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _squareplus(x, b):
    r = mpmath.sqrt(x * x + b)
    return (x + r) / 2 if x >= 0 else (b / 2) / (r - x)


def _d_squareplus(x, b):
    return _squareplus(x, b) / mpmath.sqrt(x * x + b)


def test_values_at_zero_and_infinity_come_from_the_reference_far_out():
    forward, derivative = check(Declaration("sq", _squareplus, params={"b": 4.0}), {})
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], np.float32)
    got = evaluate(forward, x, params={"b": 4.0}).want
    # squareplus(±0) = sqrt(4)/2 = 1; +inf grows; at -inf it is b/(4|x|) -> +0
    assert got[:4].tolist() == [1.0, 1.0, np.inf, 0.0] and not np.signbit(got[3])
    assert np.isnan(got[4])
    # without derivative=, mpmath differentiates the reference: d/dx at 0 is 1/2, at -inf +0
    d = evaluate(derivative, np.array([0.0, -np.inf, np.inf, -3.0]), params={"b": 4.0}).want
    assert d[:3].tolist() == [0.5, 0.0, 1.0]
    assert d[3] == float(_d_squareplus(mpmath.mpf(-3), 4))  # correctly rounded, as the formula


def test_a_declared_zero_override_wins():
    forward, _ = check(Declaration("sq", _squareplus, params={"b": 4.0}, at_neg_inf=-0.0), {})
    assert math.copysign(1.0, forward(-math.inf, b=4.0)) == -1.0


@pytest.mark.parametrize(("decl", "message"), [
    (Declaration("gelu", _squareplus, params={"b": 4.0}),
     "activation 'gelu' (actbench.register) is already declared (shipped with actbench)"),
    (Declaration("Bad-Name", _squareplus), "lower-case letters, digits and _"),
    (Declaration("sq", lambda x, b: 1 / (x - x), params={"b": 4.0}),
     "its reference raised ZeroDivisionError"),
    (Declaration("sq", lambda x, b: mpmath.log(x), params={"b": 4.0}),
     "returned mpc at x = -10.0, not an mpmath real number"),
    (Declaration("sq", lambda x, b: math.sqrt(float(x * x) + b) / 2, params={"b": 4.0}),
     "returned a float at x = -10.0; use mpmath's functions"),
    (Declaration("sq", lambda x, b: "1", params={"b": 4.0}), "returned str at x = -10.0"),
    (Declaration("sq", lambda x, b: -_squareplus(x, b), params={"b": 4.0}, monotone="increasing"),
     "is declared increasing, but its reference gives"),
    (Declaration("sq", _squareplus), "its reference raised TypeError"),  # b not declared
    (Declaration("sq", _squareplus, params={"b": 4.0}, core=(3.0, -3.0)), "is not a finite range"),
    ("squareplus", "expected an actbench Declaration, got str"),
    (Declaration("sq", _squareplus, params={"b": 4.0}, peers={"tensorflow": "x"}),
     "activation 'sq' (actbench.register): unknown peer 'tensorflow' in its spellings"),
    (Declaration("sq", _squareplus, params={"b": 4.0}, peers={"torch": "0.5 * (x +"}),
     "torch's spelling '0.5 * (x +' is not a Python expression"),
    (Declaration("sq", _squareplus, params={"b": 4.0}, peers={"jax": {"vjp": "x"}}),
     "jax spells 'vjp', which elementwise activations do not have"),
    (Declaration("sq", _squareplus, params={"b": 4.0}, peers="torch"),
     "peers must be a dict {peer: expression}, not str"),
])
def test_a_bad_declaration_is_one_error_naming_it(decl, message):
    with pytest.raises(DeclarationError, match=re.escape(message)):
        check(decl, {"gelu": "shipped with actbench"})


def test_the_exact_value_cache_keys_on_the_declared_formula():
    # two references of one name: a cache keyed on the name alone would serve the old values
    def formula(x, b):
        return _squareplus(x, b)

    first = check(Declaration("sq", formula, params={"b": 4.0}), {})[0]
    exec_ns = {"_squareplus": _squareplus, "mpmath": mpmath}
    exec("def formula(x, b):\n    return 2 * _squareplus(x, b)\n", exec_ns)
    second = check(Declaration("sq", exec_ns["formula"], params={"b": 4.0}), {})[0]
    assert fingerprint(first) != fingerprint(second)


def test_an_activation_without_oracle_says_so_before_sweeping():
    from actbench_ulp.core.catalog import CATALOG

    act = declared.register(Declaration("sq_no_oracle", _squareplus, params={"b": 4.0}))
    try:
        with pytest.raises(ValueError, match="declares no float64 oracle for its forward"):
            declared.oracle(act, "forward")
    finally:
        del CATALOG["sq_no_oracle"]


def _guide_blocks() -> dict:
    text = (ROOT / "docs" / "guide" / "declare.md").read_text()
    # a marker, then (for a block that is not a program of its own) the docs' skip note
    return dict(re.findall(r"<!-- declared-example: (\S+) -->\n"
                           r"(?:<!-- skip: [^>]*? -->\n)?```\w*\n(.*?)```", text, re.S))


def _commands(block: str) -> list:
    return [line.split() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def squareplus_project(tmp_path_factory):
    """The guide's package, installed (pip --target) beside a user's working directory."""
    blocks = _guide_blocks()
    tmp = tmp_path_factory.mktemp("declared")
    package = tmp / "squareplus-act"
    (package / "squareplus_act").mkdir(parents=True)
    (package / "squareplus_act" / "__init__.py").write_text(blocks["squareplus_act/__init__.py"])
    (package / "pyproject.toml").write_text(blocks["pyproject.toml"])
    work = tmp / "work"
    work.mkdir()
    (work / "mysquareplus.py").write_text(blocks["mysquareplus.py"])
    env = {**os.environ, "PYTHONPATH": str(_install(package, tmp / "site"))}
    return work, env, _commands(blocks["commands"])


def _install(package: Path, site: Path) -> Path:
    """``package`` on a path of its own with the metadata an install writes (its modules and a
    dist-info with the pyproject's name, version and entry points): what importlib.metadata
    reads, without pip building a wheel (the CI's venv has no ``wheel`` for that)."""
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    shutil.copytree(package, site, ignore=shutil.ignore_patterns("pyproject.toml"))
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                   f"Version: {project['version']}\n")
    groups = project.get("entry-points", {})
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
        for group, eps in groups.items()))
    return site


def _run(args, work, env):
    exe = shutil.which(args[0], path=str(BIN)) or args[0]
    return subprocess.run([exe, *args[1:]], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_guide_package_is_listed_and_audited_from_the_command_line(squareplus_project):
    work, env, commands = squareplus_project
    assert [c[:2] for c in commands] == [["actbench", "list"]] + [["actbench", "audit"]] * 4
    listing, good, swept, textbook, wider = (_run(c, work, env) for c in commands)
    assert listing.returncode == 0, listing.stderr
    assert ("declared by entry point squareplus = squareplus_act:DECLARATION of squareplus-act"
            in listing.stdout)
    assert re.search(r"squareplus .*\n +peers: torch\n", listing.stdout), listing.stdout
    assert good.returncode == 0, good.stdout + good.stderr
    assert "8 rows, 0 failed" in good.stdout  # forward and derivative, four domains each
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert "1 rows, 0 failed" in swept.stdout
    # the textbook formula: x·x overflows beyond 2**64, and -inf gives inf - inf = NaN
    assert textbook.returncode == 1, textbook.stdout + textbook.stderr
    assert "FAIL [mysquareplus:textbook] squareplus.-.forward float32" in textbook.stdout
    assert re.search(r"x=-0x1\.[0-9a-f]+p\+6[4-9] got inf want [0-9.e+-]+ \(infinity\)", textbook.stdout)
    assert "x=-inf got nan want 0.0 (nan)" in textbook.stdout
    # float64: the default profile's search finds where the float64 evaluation's x·x overflows
    assert wider.returncode == 1, wider.stdout + wider.stderr
    assert re.search(r"squareplus\.-\.forward float64 search: \d+ special-value mismatch\(es\); "
                     r"max 9\.007e\+15 ULP > budget 1\n    x=0x1\.[0-9a-f]+p\+51[2-9] got inf", wider.stdout)


def test_the_pytest_fixture_audits_the_declared_activation(squareplus_project):
    work, env, _ = squareplus_project
    (work / "test_sq.py").write_text(
        "import pytest\n"
        "from mysquareplus import rounded_once, textbook\n\n\n"
        "@pytest.mark.parametrize('fn', [rounded_once, textbook])\n"
        "def test_squareplus(actbench, fn):\n"
        "    actbench.assert_accurate(fn, 'squareplus', dtype='float32', domains=['special', 'core'])\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "test_sq.py"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert "1 failed, 1 passed" in run.stdout, run.stdout + run.stderr
    assert "mysquareplus:textbook fails" in run.stdout and "x=-inf got nan want 0.0" in run.stdout


def test_a_broken_installed_declaration_is_one_error_for_every_command(tmp_path):
    package = tmp_path / "bad-act"
    (package / "bad_act").mkdir(parents=True)
    (package / "bad_act" / "__init__.py").write_text(
        "import math\nfrom actbench_ulp import Declaration\n\n"
        "DECLARATION = Declaration('softcap', lambda x: math.tanh(float(x)))\n")
    (package / "pyproject.toml").write_text(
        '[project]\nname = "bad-act"\nversion = "0.1"\n\n'
        '[project.entry-points."actbench.activations"]\nsoftcap = "bad_act:DECLARATION"\n')
    site = _install(package, tmp_path / "site")
    run = _run(["actbench", "list"], tmp_path, {**os.environ, "PYTHONPATH": str(site)})
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "actbench: error: entry point softcap = bad_act:DECLARATION of bad-act: activation "
        "'softcap' (entry point softcap = bad_act:DECLARATION of bad-act): its reference returned "
        "a float at x = -10.0; use mpmath's functions (mpmath.exp, not math.exp) so the value "
        "keeps the working precision"]


def test_a_declaration_passed_to_the_api_is_registered_once_and_audited():
    from actbench_ulp import audit
    from actbench_ulp.core.catalog import CATALOG

    decl = Declaration("sq_api", _squareplus, derivative=_d_squareplus, params={"b": 4.0})

    def textbook(x, b=4.0):
        return (x + np.sqrt(x * x + b)) / 2

    try:
        first = audit(textbook, decl, dtype="float32", domains=["core"], points=200, cache=None)
        again = audit(textbook, decl, dtype="float32", domains=["core"], points=200, cache=None)
        # x + sqrt(x² + 4) cancels for x << 0: hundreds of ULP, the same both times
        assert first.loc[0, "max_ulp"] > 10 and not first.loc[0, "passed"]
        assert again.loc[0, "max_ulp"] == first.loc[0, "max_ulp"]
        other = Declaration("sq_api", _d_squareplus, params={"b": 4.0})
        with pytest.raises(DeclarationError, match=r"'sq_api' .* is already declared"):
            audit(textbook, other, dtype="float32", domains=["core"], points=200, cache=None)
    finally:
        CATALOG.pop("sq_api", None)


def _insert(text: str, before: str, block: str, path: str) -> str:
    assert text.count(before) == 1, f"{path}: the anchor {before!r} moved"
    return text.replace(before, block + before)


def test_the_development_guide_adds_an_activation_in_three_files(tmp_path):
    """The development guide's "Add an activation" blocks, applied as written to a copy of the source
    tree (laid out as the installed package), make hardshrink an activation like the others:
    listed, with kernels taking its default parameter, audited within the targets."""
    text = (ROOT / "docs" / "development.md").read_text()
    blocks = dict(re.findall(r"<!-- add-activation: ([^>]+?) -->\n"
                             r"(?:<!-- skip: [^>]*? -->\n)?```\w*\n(.*?)```", text, re.S))
    tree = tmp_path / "actbench_ulp"
    shutil.copytree(ROOT / "bench", tree, ignore=shutil.ignore_patterns("__pycache__"))
    for sub in ("kernels", "reference"):
        shutil.copytree(ROOT / sub, tree / sub, ignore=shutil.ignore_patterns("__pycache__"))
    edits = {  # file: [(the line the block goes before, block)]
        "kernels/_accurate.py": [
            ('    "relu": (_SIMD,),\n', blocks["kernels/_accurate.py ELEMENTWISE"]),
            ('    "hardtanh": {"min_val": -1.0, "max_val": 1.0},\n',
             blocks["kernels/_accurate.py PARAMS"]),
            ("# every ufunc above:", blocks["kernels/_accurate.py"] + "\n\n")],
        "reference/elementwise.py": [("]\n\nREFERENCES = ", blocks["reference/elementwise.py"])],
        "bench/core/catalog.py": [("    # gated: content a, gate b", blocks["bench/core/catalog.py"])],
    }
    assert sorted(edits) == sorted({k.split()[0] for k in blocks})  # three files, no more
    for rel, inserts in edits.items():
        path = tree / rel.replace("bench/", "")
        source = path.read_text()
        for before, block in inserts:
            source = _insert(source, before, block, rel)
        path.write_text(source)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    code = ("import numpy as np, actbench_ulp.kernels as k; print(actbench_ulp.kernels.__file__); "
            "print(k.hardshrink(np.array([-0.7, 0.3, 0.6], np.float32)).tolist(), "
            "k.hardshrink(np.array([0.3]), lambd=0.2).tolist()); "
            "from actbench_ulp.core.catalog import CATALOG; "
            "print(CATALOG['hardshrink'].spelling('torch', 'forward').expr)")
    run = subprocess.run([sys.executable, "-c", "import actbench_ulp; " + code], env=env,
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [str(tree / "kernels" / "__init__.py"),
                                       "[-0.699999988079071, 0.0, 0.6000000238418579] [0.3]",
                                       "F.hardshrink(x, lambd)"]
    audit = subprocess.run([sys.executable, "-m", "actbench_ulp", "audit", "--activation", "hardshrink",
                            "--out", str(tmp_path / "out")], env=env, capture_output=True,
                           text=True, timeout=300, cwd=tmp_path)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    # forward and derivative in float32 (special, thresholds, core, wide) and float64 (the
    # search too); no regressions recorded for it.  A piecewise-linear kernel is exact: 0 ULP
    assert "18 rows, 0 failed" in audit.stdout, audit.stdout
    # one line for the activation: 18 rows, 0 failed, the worst at 0 ULP of a budget of 1
    assert re.search(r"hardshrink +18 +0 +\S+ \S+ \S+ +0 +1 ", audit.stdout), audit.stdout


def test_the_fingerprint_is_the_same_for_the_same_declaration_in_every_run():
    # two runs of one declaration: one cache key (an address in it would miss every time)
    code = ("from actbench_ulp.core.declared import Declaration, check; "
            "from actbench_ulp.reference.fingerprint import fingerprint; "
            "from tests.test_declared import _squareplus; "
            "f, d = check(Declaration('sq', _squareplus, params={'b': 4.0}), {}); "
            "print(fingerprint(f), fingerprint(d))")
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                           timeout=120) for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout


def test_the_numeric_derivative_reaches_a_pool_and_takes_the_zeros_side():
    import pickle

    _, derivative = check(Declaration("sq", _squareplus, params={"b": 4.0}), {})
    assert pickle.loads(pickle.dumps(derivative))(mpmath.mpf(3), b=4.0) == derivative(
        mpmath.mpf(3), b=4.0)
    # a kink at 0: x for x > 0, x/100 below; +0 takes the right side's slope, -0 the left's
    _, kinked = check(Declaration("kink", lambda x: x if x > 0 else x / 100), {})
    got = evaluate(kinked, np.array([0.0, -0.0])).want
    assert got.tolist() == [1.0, 0.01]


@pytest.mark.parametrize(("field", "value"), [("core", (-5.0, 0.0, 5.0)), ("core", ("a", "b")),
                                               ("thresholds", ("x",)), ("oracle_bound", "4")])
def test_malformed_fields_are_declaration_errors(field, value):
    decl = Declaration("sq", _squareplus, params={"b": 4.0}, **{field: value})
    with pytest.raises(DeclarationError, match="activation 'sq'"):
        check(decl, {})
