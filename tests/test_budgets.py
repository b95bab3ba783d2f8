"""A malformed or incomplete budget file fails with an error naming the entry."""

import pytest

from actbench_ulp.core.budgets import DEFAULT_BUDGETS, TARGETS, Budget, BudgetError, load_budgets

TEXT = DEFAULT_BUDGETS.read_text()


def load(tmp_path, text):
    p = tmp_path / "budgets.toml"
    p.write_text(text)
    return load_budgets(p)


def test_packaged_budgets_load_and_keep_reasons(tmp_path):
    b = load_budgets()
    d_gelu = b.get("gelu", "simd", "derivative", "float64", "core")
    assert d_gelu.max_ulp > TARGETS[("float64", "derivative")] and "root" in d_gelu.reason
    assert b.get("gelu", "accurate", "derivative", "float32", "core").reason == ""


def _relu(value: str) -> str:
    """The packaged file with a table of its own for relu's accurate forward."""
    return TEXT + f"\n[relu.accurate.forward]\nfloat32 = {value}\n"


@pytest.mark.parametrize(("text", "message"), [
    (TEXT + "\n[gelu.accurate.forward\n", "not valid TOML"),
    (TEXT + "\n[gleu.accurate.forward]\nfloat32 = 1\n", r"\[gleu\] is not an activation"),
    (TEXT + "\n[relu.fast.forward]\nfloat32 = 1\n", "relu.fast: no such variant"),
    (TEXT + "\n[relu.accurate.backward]\nfloat32 = 1\n",
     "relu is elementwise, its directions are forward, derivative"),
    (_relu("1\nfloat128 = 1"), "relu.accurate.forward.float128: unknown dtype"),
    (_relu("3"), "relu.accurate.forward.float32: 3 ULP is above the target of 1 ULP; a looser "
                 "budget needs a reason"),
    (_relu("-1"), "relu.accurate.forward.float32: expected a non-negative number"),
    (_relu("{ reason = \"x\" }"), "relu.accurate.forward.float32: missing max_ulp"),
    (_relu("{ max_ulp = 1, cores = 2 }"), r"relu.accurate.forward.float32: unknown key\(s\) \['cores'\]"),
    (_relu("\"1\""), "expected a non-negative number of ULP, got '1'"),
])
def test_bad_budget_files_name_the_problem(tmp_path, text, message):
    with pytest.raises(BudgetError, match=message):
        load(tmp_path, text)


def test_a_row_the_file_does_not_list_is_held_to_its_target(tmp_path):
    b = load(tmp_path, "")
    assert b.get("relu", "accurate", "forward", "float32", "core") == Budget(1.0)
    assert b.get("gelu", "accurate", "derivative", "float64", "search") == Budget(2.0)
    assert b.get_any("gelu", "accurate", "derivative", "bfloat16", "special") == Budget(2.0)


def test_the_packaged_file_lists_only_what_differs_from_the_targets():
    # an entry at its target would say nothing the loader does not already apply; each one
    # above it carries its reason (the loader insists)
    from actbench_ulp.core.domains import DOMAINS

    b = load_budgets()
    for key in b.listed():
        loosest = max(b.get(*key, domain).max_ulp for domain in DOMAINS)
        assert loosest > TARGETS[(key[3], "forward" if key[2] == "forward" else "derivative")], key


def test_missing_file(tmp_path):
    with pytest.raises(BudgetError, match="budget file not found"):
        load_budgets(tmp_path / "nope.toml")


def test_a_reasoned_loose_budget_is_accepted(tmp_path):
    b = load(tmp_path, _relu('{ max_ulp = 1, wide = 3, reason = "test" }'))
    assert b.get("relu", "accurate", "forward", "float32", "wide").max_ulp == 3
    assert b.get("relu", "accurate", "forward", "float32", "core").max_ulp == 1
