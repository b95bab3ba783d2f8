"""The exact-value cache: hits, invalidation by reference and domain changes, and corrupt
entries detected, reported and recomputed."""

import dataclasses

import mpmath
import numpy as np
import pytest

from actbench_ulp import reference
from actbench_ulp.core.exact import Cache, Task, resolve_exact

X = np.linspace(-5, 5, 50).astype(np.float32)


def _task(name="sigmoid", x=X):
    return Task("elementwise", name, (x,))


def test_second_run_hits_and_returns_the_same_values(tmp_path):
    first = resolve_exact([_task()], Cache(tmp_path))
    cache = Cache(tmp_path)
    second = resolve_exact([_task()], cache)
    assert cache.hits == 1 and cache.misses == 0
    (_k, a), (_, b) = next(iter(first.items())), next(iter(second.items()))
    np.testing.assert_array_equal(a.want, b.want)
    np.testing.assert_array_equal(a.hi, b.hi)
    assert a.want.dtype == np.float32


def test_reference_change_invalidates_exactly_its_entries(monkeypatch):
    before = {n: _task(n).key for n in ("sigmoid", "tanh")}
    changed = dataclasses.replace(reference.REFERENCES["sigmoid"],
                                  fn=lambda x: 1 / (1 + mpmath.exp(-x)) + 0)
    monkeypatch.setitem(reference.REFERENCES, "sigmoid", changed)
    assert _task("sigmoid").key != before["sigmoid"]
    assert _task("tanh").key == before["tanh"]


def test_domain_change_changes_the_key():
    assert _task(x=X).key != _task(x=X[:-1]).key
    assert _task(x=X).key != _task(x=X.astype(np.float64)).key


@pytest.mark.parametrize("damage", ["garbage", "truncate", "tamper"])
def test_corrupt_entry_is_reported_and_recomputed(tmp_path, damage):
    resolve_exact([_task()], Cache(tmp_path))
    (entry,) = tmp_path.rglob("*.npz")
    good = entry.read_bytes()
    if damage == "garbage":
        entry.write_bytes(b"not a cache entry")
    elif damage == "truncate":
        entry.write_bytes(good[: len(good) // 2])
    else:  # a valid file whose values no longer match their checksum
        with np.load(entry) as f:
            parts = {k: f[k] for k in f.files}
        parts["hi"] = parts["hi"] + 1.0
        with open(entry, "wb") as f:
            np.savez(f, **parts)
    messages = []
    cache = Cache(tmp_path, report=messages.append)
    values = resolve_exact([_task()], cache)
    assert cache.corrupt == [str(entry)] and "is corrupt" in messages[0]
    fresh = resolve_exact([_task()], Cache(None))
    np.testing.assert_array_equal(next(iter(values.values())).hi, next(iter(fresh.values())).hi)
    assert entry.read_bytes() == good  # rewritten, and valid again
    again = Cache(tmp_path)
    resolve_exact([_task()], again)
    assert again.hits == 1 and not again.corrupt


def test_pool_gives_the_same_values_as_one_process(tmp_path):
    big = np.linspace(-30, 30, 3000)  # three chunks
    one = resolve_exact([_task("gelu", big)], Cache(None), jobs=1)
    two = resolve_exact([_task("gelu", big)], Cache(None), jobs=2)
    np.testing.assert_array_equal(next(iter(one.values())).hi, next(iter(two.values())).hi)


def test_mpmath_runs_on_gmpy2():
    assert mpmath.libmp.BACKEND == "gmpy"  # gmpy2 is a dependency: ~3x faster references


def test_fingerprint_sees_constants_nested_specials_and_outside_functions(monkeypatch):
    # found by review: these changed exact values without changing the key
    import actbench_ulp.reference.elementwise as elementwise
    from actbench_ulp.reference.fingerprint import fingerprint

    gelu, glu, tanh = (reference.REFERENCES["gelu"], reference.GATED["glu"],
                       reference.REFERENCES["tanh"])
    before = fingerprint(gelu), fingerprint(glu), fingerprint(tanh)
    fingerprint.cache_clear()
    monkeypatch.setattr(elementwise, "_GAUSS_TAIL", -10)
    assert fingerprint(gelu) != before[0]  # a module constant its formula uses
    fingerprint.cache_clear()
    sig = dataclasses.replace(reference.REFERENCES["sigmoid"], at_pos_inf=0.75)
    assert fingerprint(dataclasses.replace(glu, gate=sig)) != before[1]  # the gate's special
    assert fingerprint(dataclasses.replace(tanh, fn=mpmath.sinh)) != before[2]
    fingerprint.cache_clear()
