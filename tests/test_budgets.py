"""A malformed or incomplete budget file fails with an error naming the entry."""

import pytest

from actbench.core.budgets import DEFAULT_BUDGETS, TARGETS, BudgetError, load_budgets

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


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t + "\n[gelu.accurate.forward\n", "not valid TOML"),
    (lambda t: t.replace("[relu.accurate.forward]\nfloat32 = 1\n", "[relu.accurate.forward]\n"),
     "no budget for relu.accurate.forward.float32"),
    (lambda t: t + "\n[gleu.accurate.forward]\nfloat32 = 1\n", r"\[gleu\] is not an activation"),
    (lambda t: t + "\n[relu.fast.forward]\nfloat32 = 1\n", "relu.fast: no such variant"),
    (lambda t: t + "\n[relu.accurate.backward]\nfloat32 = 1\n",
     "relu is elementwise, its directions are forward, derivative"),
    (lambda t: t.replace("[relu.accurate.forward]\nfloat32 = 1\n",
                         "[relu.accurate.forward]\nfloat32 = 1\nfloat128 = 1\n"),
     "relu.accurate.forward.float128: unknown dtype"),
    (lambda t: t.replace("[relu.accurate.forward]\nfloat32 = 1\n",
                         "[relu.accurate.forward]\nfloat32 = 3\n"),
     "relu.accurate.forward.float32: 3 ULP is above the target of 1 ULP; a looser budget needs a reason"),
    (lambda t: t.replace("[relu.accurate.forward]\nfloat32 = 1\n",
                         "[relu.accurate.forward]\nfloat32 = -1\n"),
     "relu.accurate.forward.float32: expected a non-negative number"),
    (lambda t: t.replace("[relu.accurate.forward]\nfloat32 = 1\n",
                         "[relu.accurate.forward]\nfloat32 = { max_ulp = 1, cores = 2 }\n"),
     r"relu.accurate.forward.float32: unknown key\(s\) \['cores'\]"),
    (lambda t: t.replace("[relu.accurate.forward]\nfloat32 = 1\n",
                         "[relu.accurate.forward]\nfloat32 = \"1\"\n"),
     "expected a non-negative number of ULP, got '1'"),
])
def test_bad_budget_files_name_the_problem(tmp_path, edit, message):
    with pytest.raises(BudgetError, match=message):
        load(tmp_path, edit(TEXT))


def test_missing_file(tmp_path):
    with pytest.raises(BudgetError, match="budget file not found"):
        load_budgets(tmp_path / "nope.toml")


def test_a_reasoned_loose_budget_is_accepted(tmp_path):
    text = TEXT.replace("[relu.accurate.forward]\nfloat32 = 1\n",
                        '[relu.accurate.forward]\nfloat32 = { max_ulp = 1, wide = 3, reason = "test" }\n')
    b = load(tmp_path, text)
    assert b.get("relu", "accurate", "forward", "float32", "wide").max_ulp == 3
    assert b.get("relu", "accurate", "forward", "float32", "core").max_ulp == 1
