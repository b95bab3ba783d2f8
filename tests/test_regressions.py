"""The worst-input regression file: replayed as a domain, grown by --record-regressions."""

import io
import json
import shutil

import pandas as pd

from actbench_ulp import cli
from actbench_ulp.core.budgets import DEFAULT_BUDGETS
from actbench_ulp.core.catalog import CATALOG, Case
from actbench_ulp.core.regressions import DEFAULT_FILE, Regressions


def test_every_recorded_input_is_replayed_and_within_budget(tmp_path):
    entries = Regressions().entries
    assert len(entries) >= 20  # the bugs found while building the kernels
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["audit", "--domain", "regressions", "--out", str(tmp_path), "--no-cache",
                     "--jobs", "1"], out=out, err=err)
    df = pd.read_csv(tmp_path / "audit.csv")
    assert code == 0, out.getvalue()
    # one point per elementwise or gated entry, a whole row per row-wise entry, replayed on
    # every variant of its activation that takes the entry's dtype
    def variants(e):
        act = CATALOG[e["activation"]]
        return sum(Case(act, v, "forward").takes(e["dtype"]) for v in act.variants)
    assert df["n"].sum() == sum(len(e["input"].get("row", [0])) * variants(e) for e in entries)


def test_record_regressions_adds_failing_inputs_once(tmp_path):
    regs = tmp_path / "regressions.json"
    shutil.copy(DEFAULT_FILE, regs)
    before = len(json.loads(regs.read_text())["entries"])
    tight = DEFAULT_BUDGETS.read_text() + "\n[sigmoid.accurate.forward]\nfloat32 = 0.1\n"
    (tmp_path / "b.toml").write_text(tight)
    argv = ["audit", "--activation", "sigmoid", "--dtype", "float32", "--direction", "forward",
            "--domain", "core", "--budgets", str(tmp_path / "b.toml"), "--regressions", str(regs),
            "--record-regressions", "--out", str(tmp_path), "--no-cache", "--jobs", "1"]
    out = io.StringIO()
    assert cli.main(argv, out=out, err=io.StringIO()) == 1
    assert "recorded 1 new input(s)" in out.getvalue()
    entries = json.loads(regs.read_text())["entries"]
    assert len(entries) == before + 1
    new = entries[-1]
    assert new["activation"] == "sigmoid" and new["dtype"] == "float32" and "x" in new["input"]
    out = io.StringIO()
    cli.main(argv, out=out, err=io.StringIO())
    assert "recorded 0 new input(s)" in out.getvalue()  # the same input is not added twice


def test_an_installed_copy_records_only_into_a_file_of_the_users(tmp_path, monkeypatch):
    # installed from a wheel, the default file lies in site-packages: recording there would edit
    # the installed package (or fail on permissions), so the audit refuses before any work
    from actbench_ulp.core import regressions

    monkeypatch.setattr(regressions, "source_checkout", lambda: None)
    before = DEFAULT_FILE.read_bytes()
    err = io.StringIO()
    code = cli.main(["audit", "--activation", "relu", "--record-regressions", "--out",
                     str(tmp_path)], out=io.StringIO(), err=err)
    assert code == 2
    assert "--record-regressions would write into the installed actbench package" in err.getvalue()
    assert "--regressions FILE" in err.getvalue()
    assert DEFAULT_FILE.read_bytes() == before
    assert not (tmp_path / "audit.csv").exists()


def test_the_checkout_is_told_from_an_installed_copy():
    from actbench_ulp.core.results import source_checkout

    # these tests run from actbench's own checkout (the README's editable install)
    assert source_checkout() == DEFAULT_FILE.parents[2]
