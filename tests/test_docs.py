"""The README and the documentation site: the README short and its recipes run as written, the
measured pages equal to what their committed results give, every code block of the docs run
(Python) or parsed by the command line (shell), and the site built with warnings as errors."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from actbench_ulp.cli.parser import parser as cli_parser
from actbench_ulp.report.pages import FIGURE, PAGES, figure_png, page_markdown

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
README_MAX_LINES = 300  # issue 26: a newcomer reads it in five minutes

_BLOCK = re.compile(r"(?:<!-- (recipe|skip): ([^>]*?) -->\n)?```(\w*)\n(.*?)```", re.S)


def _blocks(path: Path) -> list[tuple[str | None, str, str, str]]:
    """(marker kind, marker text, language, code) of every fenced block of a Markdown file."""
    return [(kind or None, label, lang, code) for kind, label, lang, code in
            _BLOCK.findall(path.read_text(encoding="utf-8"))]


def _recipe(name: str) -> str:
    found = [code for kind, label, _, code in _blocks(ROOT / "README.md")
             if kind == "recipe" and label.split(" (")[0] == name]
    assert len(found) == 1, f"the README has {len(found)} recipe(s) named {name!r}"
    return found[0]


def _run(cmd, cwd, timeout=600, **kw):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          **kw)


def _parses(line: str) -> None:
    """A command line of the docs, accepted by actbench's parser (argparse exits 2 otherwise)."""
    words = shlex.split(line, comments=True)
    words = words[: words.index("&&")] if "&&" in words else words
    assert words[0] == "actbench", line
    try:
        cli_parser().parse_args(words[1:])
    except SystemExit as exc:
        pytest.fail(f"the docs' command does not parse (exit {exc.code}): {line}")


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, len(lines)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_each_measured_page_is_what_its_results_give(page):
    committed = DOCS / "results" / f"{page.name}.md"
    assert committed.exists(), f"run: actbench report --pages docs/results ({committed} missing)"
    assert committed.read_text(encoding="utf-8") == page_markdown(page, ROOT / "results"), (
        f"{committed} differs from its results: regenerate it with "
        "`actbench report --pages docs/results`")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_overview_figure_is_drawn_from_its_results():
    # drawn again from results/; its pixels depend on the matplotlib version, so not compared
    committed = (DOCS / "results" / FIGURE[0]).read_bytes()
    assert _png_size(figure_png(ROOT / "results")) == _png_size(committed) == (1000, 420)


def test_no_committed_result_was_written_from_a_dirty_tree():
    # the committed result sets are the pages' (results/ holds a user's own runs beside them)
    metas = [ROOT / "results" / page.results / part / page.meta_file
             for page in PAGES for part in page.parts]
    metas += [p for page in PAGES if (p := ROOT / "results" / page.results / "instructions.json").exists()]
    assert len(metas) >= len(PAGES)
    for meta in metas:
        assert '"dirty": false' in meta.read_text(encoding="utf-8"), meta


def test_the_setup_recipes_are_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    setup = _recipe("setup").strip()
    assert setup.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    assert setup.split(" && ", 2)[2] in ci  # the install and the audit, as CI runs them
    assert ci.rstrip().endswith(_recipe("tests").strip())


def test_the_readme_audit_output_is_what_the_command_prints(tmp_path):
    shown = _recipe("audit-output").splitlines()
    command = shown[0].removeprefix("$ ")
    (tmp_path / "tight.toml").write_text(_recipe("tight.toml"))
    done = _run(shlex.split(command), tmp_path)
    assert done.returncode == 1, done.stderr  # the row fails its (too tight) budget
    printed = done.stdout.splitlines()
    expected = [line for line in shown[1:] if line != "…"]  # … stands for the timing line
    assert printed[: len(expected)] == expected, done.stdout


def test_the_readme_python_recipe_runs(tmp_path):
    done = _run([sys.executable, "-c", _recipe("python-audit")], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "core" in done.stdout and "special" in done.stdout, done.stdout


def test_the_readme_pytest_recipe_passes(tmp_path):
    (tmp_path / "test_gelu.py").write_text(_recipe("test_gelu.py"))
    done = _run([*shlex.split(_recipe("pytest").strip().replace("python", sys.executable, 1)),
                 "-p", "no:cacheprovider"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout, done.stdout


@pytest.mark.parametrize("name", ["exhaustive", "bench"])
def test_the_readme_command_recipes_run(tmp_path, name):
    done = _run(shlex.split(_recipe(name)), tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    if name == "bench":
        assert (tmp_path / "results" / "speed.csv").exists()


@pytest.mark.parametrize("name", ["gate", "report"])
def test_the_readme_recipes_that_are_run_elsewhere_parse(name):
    for line in _recipe(name).splitlines():
        for command in line.split(" && "):
            _parses(command)


_GUIDE = sorted(p for p in DOCS.rglob("*.md") if "results" not in p.relative_to(DOCS).parts)


@pytest.mark.parametrize("page", _GUIDE, ids=[str(p.relative_to(DOCS)) for p in _GUIDE])
def test_the_docs_code_blocks_run_or_parse(tmp_path, page):
    """Each page's Python blocks run in order in one process (a block marked
    ``<!-- skip: reason -->`` is left out, saying why); each shell line that starts with
    ``actbench`` parses."""
    python = []
    for kind, label, lang, code in _blocks(page):
        if kind == "skip":
            assert label.strip(), f"{page}: a skipped block must say why"
            continue
        if lang == "python":
            python.append(code)
        elif lang in ("sh", "bash", "console"):
            for line in code.replace("\\\n", " ").splitlines():
                line = line.strip().removeprefix("$ ")
                if line.startswith("actbench "):
                    _parses(line)
    if python:
        done = _run([sys.executable, "-c", "\n\n".join(python)], tmp_path)
        assert done.returncode == 0, f"{page}:\n{done.stderr[-3000:]}"


def test_the_docs_build_with_warnings_as_errors(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    done = _run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "actbench audit" in cli and "--sweep-stride" in cli  # generated from --help
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert "assert_accurate" in api and "Declaration" in api
    shutil.rmtree(site)
