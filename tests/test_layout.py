"""The installed layout: one import namespace (``actbench_ulp``), subpackages stacked so that
imports only run downward, package data in the wheel, and a cheap ``import actbench_ulp``."""

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"

# Each layer may import itself and the layers below it; ``speed`` sits beside the audit (it
# reads the audit table's worst errors) and below the gate, whose runs time it.
LAYERS = {"kernels": 0, "reference": 0, "core": 1, "accuracy": 2, "speed": 3, "gate": 4,
          "report": 5}
TOP = 6  # cli, api, testing, pytest_plugin: the entry points


def _layer(parts: tuple) -> int:
    return LAYERS.get(parts[0], TOP) if parts else TOP


def _imports(path: Path, package: tuple):
    """The actbench modules ``path`` imports, as parts after ``actbench``; ``package`` is the
    file's own package (``("kernels",)``, ``("core",)``, ``()`` for the top), against which a
    relative import is resolved."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x / from ..gate import y
                base = package[: len(package) - (node.level - 1)]
                mod = (*base, *(node.module.split(".") if node.module else ()))
            elif node.module and node.module.split(".")[0] == "actbench_ulp":
                mod = tuple(node.module.split(".")[1:])
            else:
                continue
            # `from actbench_ulp import kernels`, `from . import audit`: the names are modules too
            yield from ([(n.name,) for n in node.names] if not mod else [mod])
        elif isinstance(node, ast.Import):
            for n in node.names:
                if n.name.startswith("actbench_ulp."):
                    yield tuple(n.name.split(".")[1:])


def test_imports_only_run_downward():
    upward = []
    sources = [(p, ("kernels",)) for p in (ROOT / "kernels").glob("*.py")]
    sources += [(p, ("reference",)) for p in (ROOT / "reference").glob("*.py")]
    sources += [(p, p.relative_to(BENCH).parts[:-1]) for p in BENCH.rglob("*.py")]
    for path, where in sources:
        own = _layer(where)
        for target in _imports(path, where):
            if _layer(target) > own:
                upward.append(f"{path.relative_to(ROOT)} imports actbench.{'.'.join(target)}")
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_the_layer_check_sees_upward_imports(tmp_path):
    # the check above must be able to fail: an absolute and a relative upward import from core
    planted = tmp_path / "planted.py"
    planted.write_text("from actbench_ulp.report import build\nfrom ..gate import compare\n"
                       "from actbench_ulp import kernels\n")
    layers = [_layer(target) for target in _imports(planted, ("core",))]
    assert layers == [LAYERS["report"], LAYERS["gate"], LAYERS["kernels"]]


def test_every_harness_module_is_in_a_subpackage_with_a_docstring():
    flat = sorted(p.name for p in BENCH.glob("*.py"))
    # the top holds only the entry points: the package, `python -m actbench_ulp`, the Python API,
    # its testing helpers and the pytest plugin
    assert set(flat) <= {"__init__.py", "__main__.py", "api.py", "testing.py", "pytest_plugin.py"}, flat
    for sub in (p for p in BENCH.iterdir() if p.is_dir() and p.name != "__pycache__"):
        init = sub / "__init__.py"
        assert init.exists(), sub
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} says nothing of what it owns"


def test_import_actbench_loads_nothing_heavy():
    # the pytest plugin imports actbench in every pytest run of an environment that has it
    code = ("import sys, actbench_ulp; heavy = sorted({'numba', 'mpmath', 'pandas', 'scipy', 'torch'}"
            " & set(sys.modules)); print(heavy); sys.exit(bool(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_wheel_holds_one_namespace_and_its_data(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the wheel is built from the tracked files")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    src = tmp_path / "src"
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    # built as a user's `pip install` builds it: in pip's isolated build environment, with the
    # setuptools pyproject.toml asks for (a fresh venv's own setuptools may be too old to build
    # wheels at all)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(tmp_path / "dist"), str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("actbench_ulp-*.whl")  # the distribution: actbench-ulp
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"actbench_ulp", next(t for t in top if t.endswith(".dist-info"))}, top
    for needed in ("actbench_ulp/core/budgets.toml", "actbench_ulp/core/regressions.json",
                   "actbench_ulp/kernels/__init__.py", "actbench_ulp/reference/__init__.py",
                   "actbench_ulp/speed/benchmarks/test_speed.py", "actbench_ulp/cli/__init__.py"):
        assert needed in names, needed
    # research scripts live in tools/, outside the package: the wheel holds what a user runs
    assert not [n for n in names if n.startswith("actbench_ulp/gate/experiment")], names
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "actbench = actbench_ulp.cli:main" in entry_points
    assert "[pytest11]\nactbench = actbench_ulp.pytest_plugin" in entry_points, entry_points
