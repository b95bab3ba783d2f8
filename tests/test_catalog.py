"""The catalog is complete and its threshold comments are true."""

import mpmath
import numpy as np
import pytest

from actbench_ulp.core import domains
from actbench_ulp.core.budgets import load_budgets
from actbench_ulp.core.catalog import CATALOG, DTYPE_EDGES, DTYPES, cases
from actbench_ulp.reference import FORMATS, REFERENCES, round_to_format
from actbench_ulp.reference.edges import last_true, next_up


def test_every_catalog_row_has_a_budget():
    budgets = load_budgets()  # raises naming any missing row
    for c in cases():
        for dt in filter(c.takes, DTYPES):
            for dom in domains.DOMAINS:
                assert budgets.get(c.activation.name, c.variant.name, c.direction, dt, dom).max_ulp >= 0


def test_every_direction_has_a_reference_and_a_kernel():
    for act in CATALOG.values():
        for direction in act.directions:
            assert callable(act.reference(direction))
            for v in act.variants:
                assert callable(v.kernel(direction))
    assert {a.name for a in CATALOG.values() if a.kind == "elementwise"} | {
        f"d_{a.name}" for a in CATALOG.values() if a.kind == "elementwise"} <= set(REFERENCES)


EDGES = [(act, e, dt) for act in CATALOG.values() for e in act.edges if e.holds for dt in DTYPES]


@pytest.mark.parametrize(("act", "edge", "dtype"), EDGES,
                         ids=[f"{a.name}-{e.why[:30]}-{d}" for a, e, d in EDGES])
def test_threshold_comment_is_true(act, edge, dtype):
    """x is the largest float with holds(f(x), x); the next float up breaks it."""
    fmt = FORMATS[dtype]
    ref = act.reference("forward")

    def f(x):
        with mpmath.workprec(6 * fmt.p):
            return round_to_format(ref(x, **act.params), fmt)

    x = edge.value(dtype)
    assert float(np.array(x, dtype=dtype)) == x, "edge literal not representable in its dtype"
    assert edge.holds(f(x), x)
    up = next_up(x, dtype)
    assert not edge.holds(f(up), up)


def test_edge_finder_agrees_with_a_literal():
    # sigmoid_f32 != 1 up to 0x1.154244p+4
    fmt = FORMATS["float32"]

    def below_one(x):
        with mpmath.workprec(144):
            return round_to_format(REFERENCES["sigmoid"](x), fmt) < 1

    assert last_true(below_one, 0.0, 100.0, np.float32) == float.fromhex("0x1.154244p+4")


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_exp_edges_are_round_to_nearest_logs(dtype):
    fmt = FORMATS[dtype]
    fi = np.finfo(dtype)
    with mpmath.workprec(300):
        logs = [mpmath.log(float(fi.max)), mpmath.log(float(fi.smallest_normal)),
                mpmath.log(mpmath.mpf(2) ** (fmt.emin - fmt.p))]
        assert [e.value(dtype) for e in DTYPE_EDGES] == [round_to_format(v, fmt) for v in logs]


@pytest.mark.parametrize("dtype", DTYPES)
def test_domains_are_deterministic_and_cover_what_they_promise(dtype):
    act = CATALOG["gelu"]
    for dom in ("special", "thresholds", "core", "wide", "bits"):
        a = domains.points(act, dtype, dom)
        b = domains.points(act, dtype, dom)
        np.testing.assert_array_equal(a, b)
        assert a.dtype == dtype and a.size > 0
    special = domains.points(act, dtype, "special")
    assert np.isnan(special).sum() == 1 and np.isinf(special).sum() == 2
    assert (special == 0).sum() == 2 and np.signbit(special[special == 0]).sum() == 1
    wide = domains.points(act, dtype, "wide")
    fi = np.finfo(dtype)
    mags = np.abs(wide)
    assert mags.min() < fi.smallest_normal and mags.max() > fi.max / 4  # subnormals to max
    assert (wide < 0).sum() == (wide > 0).sum()
    core = domains.points(act, dtype, "core")
    assert core.min() >= -10 and core.max() <= 10


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_bits_domain_weights_the_edges(dtype):
    with np.errstate(invalid="ignore"):  # signalling NaNs are among the patterns
        x = domains.points(CATALOG["gelu"], dtype, "bits", 4000).astype(np.float64)
    fi = domains.finfo(dtype)
    assert np.isnan(x).sum() > 100
    assert ((np.abs(x) < float(fi.smallest_normal)) & (x != 0)).sum() > 100  # subnormals
    assert (np.abs(x) > float(fi.max) / 4).sum() > 100  # next to the overflow edge
    assert (x < 0).sum() > 1000 and (x > 0).sum() > 1000


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_exhaustive_domain_is_every_16_bit_pattern(dtype):
    x = domains.points(CATALOG["gelu"], dtype, "exhaustive")
    assert x.size == 65536 and len(np.unique(x.view(np.uint16))) == 65536
    with pytest.raises(ValueError, match=r"float32's 2\*\*32 are swept in chunks"):
        domains.points(CATALOG["gelu"], "float32", "exhaustive")
