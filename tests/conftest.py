import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    # the CLI's default exact-value cache lives in the user's home; tests keep their own
    monkeypatch.setenv("ACTBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "actbench-cache"))
