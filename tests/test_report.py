"""`actbench report`: the report from real audit and timing results (a small selection, so
this stays quick), with only one kind of result, with bad input; the error curves agree with
the audit; the HTML opens in headless Chromium with every image loaded and no console
message (skipped, saying why, where no Chromium is installed)."""

import io
import json
import re
import shutil
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actbench_ulp import cli
from actbench_ulp.accuracy import error_curves
from actbench_ulp.core import catalog, peers, resultset
from actbench_ulp.core.exact import Cache, default_cache_dir
from actbench_ulp.report import document, speed_best

# a libm kernel, one with a double-double tail, a gated and a row-wise one: every kind of figure
ACTIVATIONS = "sigmoid,gelu,glu,softmax"
POINTS = 200  # per random domain: the curves re-evaluate these, so keep the exact values few


@pytest.fixture(autouse=True, scope="module")
def _seed_figures_drawn_once():
    """The seed report's 13 figures come from the references and the seed's formulas, not from
    the results: every report in this module draws the same 13 PNGs (~8 s each time), so
    each is drawn once and reused, bytes unchanged; the rest is drawn as ever."""
    drawn, real = {}, document.render_figures

    def render(rep, progress=None):
        fresh = [f for f in rep.figures if f.slug not in drawn]
        real(document.Report(rep.title, fresh), progress)
        for f in rep.figures:
            if f.slug in drawn:
                f.png = drawn[f.slug]
            elif f.slug.startswith("seed-"):
                drawn[f.slug] = f.png

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(document, "render_figures", render)
        yield


def _run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """An audit of ours and the seed's NumPy formulas, and a short timing run, in one
    directory, as a user makes them."""
    path = tmp_path_factory.mktemp("results")
    code, out, err = _run("audit", "--activation", ACTIVATIONS, "--impl", "ours,numpy-seed",
                          "--points", str(POINTS), "--out", str(path))
    # exit 1: the seed's formulas leave our budgets (test_failing_rows_come_first uses that)
    assert code == 1 and "numpy-seed" in out, out + err
    code, out, err = _run("bench", "--activation", "sigmoid", "--size", "1000", "--impl",
                          "ours,numpy-seed", "--max-time", "0.01", "--rounds", "3",
                          "--out", str(path))
    assert code == 0, out + err
    return path


@pytest.fixture(scope="module")
def full_report(results, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("report")
    code, out, err = _run("report", "--results", str(results), "--out", str(out_dir))
    assert code == 0, out + err
    return out_dir, out


def _only(results, tmp_path, names, activation=None):
    """A copy of some of the results' files; with ``activation``, the audit's rows of that
    activation's accurate variant alone (each audited kernel is a figure: fewer are quicker)."""
    d = tmp_path / "only"
    d.mkdir()
    for name in names:
        shutil.copy(results / name, d / name)
    if activation is not None:
        audit = pd.read_csv(d / "audit.csv", keep_default_na=False)
        keep = (audit["activation"] == activation) & (audit["variant"].isin(["accurate", ""]))
        audit[keep].to_csv(d / "audit.csv", index=False)
    return d


def test_report_has_every_part(full_report):
    out_dir, printed = full_report
    html = (out_dir / "report.html").read_text(encoding="utf-8")
    md = (out_dir / "report.md").read_text(encoding="utf-8")
    figures = sorted(p.name for p in (out_dir / "figures").glob("*.png"))
    # 2 directions × (sigmoid: accurate, simd, simd_f32 and simd_f32_fast (float32 only);
    # gelu: accurate, simd, simd_f32; softmax: accurate, fast) + glu × 3 directions (accurate,
    # fast), each in its dtypes
    assert sum(f.startswith("ulp-") for f in figures) == (
        2 * ((2 + 2 + 1 + 1) + (2 + 2 + 1) + (2 + 2)) + 3 * (2 + 2))
    assert {"ulp-gelu-accurate-derivative-float32.png", "ulp-glu-accurate-d_b-float64.png",
            "ulp-softmax-accurate-vjp-float32.png", "ulp-sigmoid-simd-forward-float32.png",
            } <= set(figures)
    # the seed report's 13 figures, forward/derivative speed charts and a scatter per dtype
    assert sum(f.startswith("seed-") for f in figures) == 13
    assert {"speed-forward-float32-1000.png", "speed-derivatives-float64-1000.png",
            "speed-accuracy-float32.png", "speed-accuracy-float64.png"} <= set(figures)
    # every PNG is inlined in the HTML (self-contained) and linked from the Markdown
    assert html.count('src="data:image/png;base64,') == len(figures)
    assert all(f"figures/{f}" in md for f in figures)
    for part in ("The seed report's findings, measured", "Accuracy: error against the input",
                 "Speed", "Our fastest variant within the accuracy target", "Result tables",
                 "Run metadata", "numpy-seed"):
        assert html_escape(part) in html and part in md
    assert "No speed results" not in md and "No accuracy results" not in md
    assert f"wrote {out_dir / 'report.html'}" in printed


def test_findings_table_states_eight_measured_findings(full_report):
    md = (full_report[0] / "report.md").read_text(encoding="utf-8")
    section = md.split("## The seed report's findings, measured")[1].split("\n## ")[0]
    cells = [[c.strip().strip("*") for c in re.split(r"(?<!\\)\|", line)]  # \| is text
             for line in section.splitlines() if line.startswith("| ")]
    rows = [r for r in cells if r[1].isdigit()]  # partly-held findings are in bold
    assert [r[1] for r in rows] == [str(k) for k in range(1, 9)]
    # each with a verdict, and the measured number next to the seed's claim (finding 4: the
    # GELU approximation's largest error, checked against mpmath in test_seed_report.py)
    assert {r[5] for r in rows} <= {"holds", "partly", "does not hold"}
    assert "0.000473236" in rows[3][4] and "0.005" in rows[3][3]


def test_failing_rows_come_first(full_report):
    # the seed's sigmoid overflows to 0 in the float64 tail: billions of ULP there (a subnormal
    # value lost), so its rows fail and must lead the accuracy table
    md = (full_report[0] / "report.md").read_text(encoding="utf-8")
    table = md.split("### Accuracy (max ULP per domain; failing rows first)")[1].split("\n\n")[1]
    header, _, *body = table.splitlines()
    column = [h.strip() for h in header.split("|")].index("passed")
    flags = [line.split("|")[column].strip().strip("*") for line in body]
    assert "NO" in flags and "yes" in flags
    first_ok = flags.index("yes")
    assert set(flags[first_ok:]) <= {"yes", "absent"}  # absent: a peer lacks the function
    assert "numpy-seed" in body[0]


def test_report_with_only_accuracy_results(results, tmp_path):
    only = _only(results, tmp_path, ["audit.csv", "audit.json"], activation="sigmoid")
    code, out, err = _run("report", "--results", str(only), "--out", str(tmp_path / "r"))
    assert code == 0, out + err
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "No speed results" in md and "actbench bench --out" in md
    assert "note: No speed results" in out
    assert not list((tmp_path / "r" / "figures").glob("speed-*"))
    assert list((tmp_path / "r" / "figures").glob("ulp-*"))


def test_report_with_only_speed_results(results, tmp_path):
    only = _only(results, tmp_path, ["speed-raw.json", "speed.json"])
    code, out, err = _run("report", "--results", str(only), "--out", str(tmp_path / "r"))
    assert code == 0, out + err
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "No accuracy results" in md and "actbench audit --out" in md
    figures = {p.name for p in (tmp_path / "r" / "figures").glob("*.png")}
    assert not any(f.startswith("ulp-") for f in figures)
    # the timing run carried the audit's max ULP, so speed against accuracy is still drawn
    assert "speed-accuracy-float32.png" in figures


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "speed-raw.json").write_text("{not json"), "is not valid JSON"),
    (lambda d: [(d / n).unlink() for n in ("audit.csv", "audit.json", "speed-raw.json",
                                            "speed.json")], "holds no results"),
])
def test_bad_results_keep_the_previous_report(results, tmp_path, damage, message):
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    out_dir = tmp_path / "r"
    out_dir.mkdir()
    (out_dir / "report.html").write_text("the previous report")
    damage(copy)
    code, _, err = _run("report", "--results", str(copy), "--out", str(out_dir))
    assert code == 2 and message in err and err.count("\n") == 1
    assert (out_dir / "report.html").read_text() == "the previous report"


def test_results_with_no_rows_are_one_clear_error(results, tmp_path):
    only = _only(results, tmp_path, ["audit.json"])
    header = (results / "audit.csv").read_text(encoding="utf-8").splitlines()[0]
    (only / "audit.csv").write_text(header + "\n", encoding="utf-8")
    code, _, err = _run("report", "--results", str(only), "--out", str(tmp_path / "r"))
    assert code == 2 and "holds no measurements" in err and err.count("\n") == 1


def test_unwritable_out_is_one_clear_error(results, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = _run("report", "--results", str(results), "--out", str(blocker / "report"))
    assert code == 2 and "--out" in err and err.count("\n") == 1


def test_a_failed_write_keeps_the_previous_report(tmp_path, monkeypatch):
    def one(text, png):
        rep = document.Report(text)
        rep.add("text", text)
        rep.blocks.append(document.Figure("f", "t", "c", lambda: None, png=png))
        return rep

    document.write(one("old", b"old png"), tmp_path)
    real = document.os.replace

    def fail_on_markdown(src, dst):
        if str(dst).endswith("report.md"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(document.os, "replace", fail_on_markdown)
    with pytest.raises(resultset.ResultsError, match="No space left"):
        document.write(one("new", b"new png"), tmp_path)
    # the old figures are back; nothing but the old set (and the html written just before the
    # failure: the renames cannot be one transaction) is left, no scratch directories
    assert (tmp_path / "figures" / "f.png").read_bytes() == b"old png"
    assert "old" in (tmp_path / "report.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures", "report.html", "report.md"]


def test_a_users_implementation_gets_its_line(tmp_path):
    # a module:function implementation from the audit is loaded again for the figure
    code, out, err = _run("audit", "--activation", "gelu", "--direction", "forward", "--dtype",
                          "float32", "--impl", "ours", "--impl", "tests.userkernels:naive_gelu",
                          "--points", "100", "--out", str(tmp_path))
    assert code == 1, out + err  # 1 + erf cancels: the naive form leaves the budget
    code, out, err = _run("report", "--results", str(tmp_path), "--out", str(tmp_path / "r"))
    assert code == 0, out + err
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    # a peer runs beside our first variant
    caption = next(line for line in md.splitlines()
                   if line.startswith("*gelu forward [accurate], float32"))
    assert "tests.userkernels:naive_gelu: max" in caption and "ours: max 0.5 ULP" in caption


def test_figures_from_other_kernels_than_the_audits_are_flagged(results, tmp_path):
    # the curves run today's kernels; an audit from a commit git does not know cannot vouch
    # for them, and the report says so
    only = _only(results, tmp_path, ["audit.csv", "audit.json"], activation="sigmoid")
    meta = json.loads((only / "audit.json").read_text(encoding="utf-8"))
    (only / "audit.json").write_text(json.dumps({**meta, "commit": "0" * 40}), encoding="utf-8")
    code, out, err = _run("report", "--results", str(only), "--out", str(tmp_path / "r"))
    assert code == 0, out + err
    assert "git cannot tell whether the kernels changed" in out


def test_missing_results_directory_is_one_clear_error(tmp_path):
    code, _, err = _run("report", "--results", str(tmp_path / "nope"), "--out", str(tmp_path))
    assert code == 2 and "is not a directory of results" in err


def test_error_curve_agrees_with_the_audit(results):
    """The figure's points are the audit's core and wide points, measured the same way: the
    curve's worst error equals the audit's max ULP over those two domains, to the bit."""
    rs = resultset.load(results)
    case = next(catalog.cases(["gelu"], None, ["derivative"]))
    exact_cache = Cache(default_cache_dir())
    for dtype in ("float32", "float64"):
        work = error_curves.work_for(case, dtype, POINTS)
        from actbench_ulp.core.exact import resolve_exact

        exact = resolve_exact([b.task for b in work], exact_cache)
        curves = error_curves.curves_for(case, [peers.resolve("ours")], work, exact)
        audit = rs.audit[(rs.audit["impl"] == "ours") & (rs.audit["activation"] == "gelu")
                         & (rs.audit["direction"] == "derivative") & (rs.audit["dtype"] == dtype)
                         & (rs.audit["variant"] == case.variant.name)
                         & rs.audit["domain"].isin(error_curves.CURVE_DOMAINS)]
        assert len(curves) == 1 and curves[0].x.size == 2 * POINTS
        assert np.max(curves[0].ulps) == audit["max_ulp"].max()
        assert curves[0].worst[0][1] == audit["max_ulp"].max()


def test_fastest_within_target_table_names_the_machine():
    from tests.test_speed import _best_inputs

    speed, audit = _best_inputs()
    rs = resultset.ResultSet(Path("RESULTS"), audit=audit, speed_meta={
        "cpu": {"model": "Some CPU", "logical_cores": 2}, "threads": 1, "created": "today"})
    rep = document.Report("t")
    speed_best.add_section(rep, rs, speed)
    text = next(b.text for b in rep.blocks if b.kind == "text")
    assert "Timed on Some CPU (2 logical cores), 1 thread(s), today" in text
    table = next(b for b in rep.blocks if b.kind == "table")
    rows = [dict(zip(table.header, r, strict=True)) for r in table.rows]
    assert len(rows) == 9 and "kind" not in table.header and "row_length" in table.header
    first = rows[0]
    assert (first["activation"], first["variant"], first["peer"], first["ratio_vs_peer"],
            first["row_length"]) == ("sigmoid", "simd", "jax", "0.8", "—")
    assert first["excluded"] == "simd_f32_fast (1.5 ULP); simd_f32 (unaudited)"
    md = document.to_markdown(rep)
    assert "| softmax | vjp | float32 | 1000 | 100 | fast |" in md
    # no audit: a notice saying how to get one, no table
    rep = document.Report("t")
    speed_best.add_section(rep, resultset.ResultSet(Path("RESULTS")), speed)
    assert not any(b.kind == "table" for b in rep.blocks)
    assert "actbench audit --out RESULTS" in rep.notices[0]


def test_report_blocks_render_without_figures_drawn(results):
    # the HTML writer escapes everything it is given: a hostile name cannot inject markup
    rep = document.Report("<script>alert(1)</script>")
    rep.add("table", header=["<b>h</b>"], rows=[["<img src=x onerror=alert(1)>"]], failing=[True])
    page = document.to_html(rep)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert 'class=failing' in page


# ---------------------------------------------------------------- the report in a browser

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)
CHROMEDRIVER = shutil.which("chromedriver")


def _open_in_chromium(page, tmp_path):
    """(images, console): each <img> as [alt, loaded, natural width], and every message the
    page logged, from headless Chromium driven by chromedriver."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no Chromium and chromedriver on PATH: install them (Debian: apt-get install "
                    "chromium chromium-driver) to open the report in a browser")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # this machine's network is closed: without these Chromium keeps trying Google's hosts
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.get(page.as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        console = driver.get_log("browser")
    finally:
        driver.quit()
    return images, console


def test_report_opens_in_chromium_with_every_image(full_report, tmp_path):
    out_dir, _ = full_report
    images, console = _open_in_chromium(out_dir / "report.html", tmp_path)
    assert len(images) == len(list((out_dir / "figures").glob("*.png")))
    broken = [alt for alt, loaded, width in images if not (loaded and width > 0)]
    assert broken == []
    assert console == []


def test_the_browser_check_sees_a_broken_image_and_a_console_error(tmp_path):
    # the check above must be able to fail: a page with an image that cannot decode and a
    # script error is caught by both of its conditions
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><img alt="bad" src="data:image/png;base64,AAAA">'
                    "<script>undefinedFunction()</script></body></html>")
    images, console = _open_in_chromium(page, tmp_path)
    assert images == [["bad", True, 0]]
    assert any("undefinedFunction" in m["message"] for m in console)


def test_the_search_section_tables_and_draws_the_maxima_found(results, full_report):
    """The default audit searched sigmoid and gelu in float64 (ours, numpy-seed): the report
    tables each implementation's maximum found and draws each searched kernel per binade, and
    the figure's worst binade holds the row's maximum."""
    from actbench_ulp.report import sweeps

    out_dir, _ = full_report
    md = (out_dir / "report.md").read_text(encoding="utf-8")
    assert "The search: worst cases found" in md
    audit = pd.read_csv(results / "audit.csv", keep_default_na=False)
    table = sweeps.search_table(audit)
    assert list(table.columns) == ["ours", "numpy-seed"]
    assert float(table.loc[("sigmoid", "forward"), "ours"]) <= 1  # the accurate float64 target
    # the seed's 1/(1 + exp(-x)) is 0 below -709.78, where exp(-x) overflows: up to 1.1e15 ULP
    # there (e**-709.78 in subnormal ULPs); the search's lower bound comes within 10x of it
    assert float(table.loc[("sigmoid", "forward"), "numpy-seed"]) > 1.1e14
    figures = {p.name for p in (out_dir / "figures").glob("search-*.png")}
    assert {"search-sigmoid-forward-float64.png", "search-gelu-derivative-float64.png"} <= figures
    row = sweeps.search_rows(audit).query("activation == 'sigmoid' and impl == 'ours'").iloc[0]
    maxima = json.loads(row["sweep"])["binade_max_ulp"]
    assert max(m for _, _, m in maxima) == pytest.approx(float(row["max_ulp"]))
