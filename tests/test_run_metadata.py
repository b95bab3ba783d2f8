"""A result file's metadata names the CPU as the kernels' compiler sees it (the target Numba
compiles for, its vector extensions, the widest vector the kernels get) and the framework
peers' dispatch levels, importing a framework only for a run that uses it."""

import json
import sys
import types

import pytest

from actbench_ulp.core import results
from actbench_ulp.kernels import _target


def test_the_compiler_target_is_the_hosts():
    if _target.config.CPU_NAME or _target.config.CPU_FEATURES is not None:
        pytest.skip("NUMBA_CPU_NAME / NUMBA_CPU_FEATURES set: the kernels compile for another CPU")
    meta = json.loads(json.dumps(results.run_metadata(), default=str))  # as written
    target = meta["compiler_target"]
    assert target["cpu_name"] == _target.llvm.get_host_cpu_name()
    assert (target["cpu_name_from"], target["features_from"]) == ("host", "host")
    assert list(target["extensions"]) == list(_target.EXTENSIONS)
    on = _target.llvm.get_host_cpu_features()
    assert all(target["extensions"][name] == on.get(name, False) for name in _target.EXTENSIONS)
    # LLVM's answer agrees with the features': 512 bits with AVX-512F, 256 with AVX, else 128
    assert target["vector_bits"] == (512 if on.get("avx512f") else 256 if on.get("avx") else 128)


def test_the_compiler_target_follows_numbas_settings(monkeypatch):
    # NUMBA_CPU_NAME / NUMBA_CPU_FEATURES as Numba read them at import; an empty feature string
    # is the named CPU's own set, which LLVM does not list
    monkeypatch.setattr(_target.config, "CPU_NAME", "haswell")
    monkeypatch.setattr(_target.config, "CPU_FEATURES", "")
    assert results.run_metadata()["compiler_target"] == {
        "cpu_name": "haswell", "cpu_name_from": "NUMBA_CPU_NAME", "features_from": "NUMBA_CPU_FEATURES",
        "extensions": None, "vector_bits": 256}
    monkeypatch.setattr(_target.config, "CPU_FEATURES", "+avx,+avx2,+fma,-avx512f")
    target = results.run_metadata()["compiler_target"]
    on = target["extensions"]
    assert target["vector_bits"] == 256 and on["avx2"] and not on["avx512f"]


def _fake_torch(capability):
    cpu = types.SimpleNamespace(get_cpu_capability=lambda: capability)
    return types.SimpleNamespace(__version__="0.0-fake", backends=types.SimpleNamespace(cpu=cpu))


def test_a_framework_is_described_only_where_the_run_has_it(monkeypatch):
    for name in results._FRAMEWORKS:
        monkeypatch.delitem(sys.modules, name, raising=False)
    meta = results.run_metadata(peer_names=["ours", "numpy_seed"])
    assert meta["peers"] == {} and "peer_names" not in meta
    assert "torch" not in sys.modules and "jax" not in sys.modules  # nothing imported for it
    # imported by the run (an audit's peer, a user's callable): described, at no import cost
    monkeypatch.setitem(sys.modules, "torch", _fake_torch("AVX2"))
    assert results.run_metadata()["peers"] == {"torch": {"version": "0.0-fake", "cpu_capability": "AVX2"}}


def test_the_settings_that_change_the_code_are_recorded(monkeypatch):
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_max_isa=AVX2")
    env = results.run_metadata()["env"]
    assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["XLA_FLAGS"] == "--xla_cpu_max_isa=AVX2"


def test_a_named_peer_is_imported_and_described():
    # a benchmark run times its peers in the suite's process: the metadata's process imports them
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    peers = results.run_metadata(peer_names=["ours", "torch", "jax"])["peers"]
    assert peers["torch"] == {"version": torch.__version__,
                              "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    assert peers["jax"]["version"] == jax.__version__ and peers["jax"]["platform"] == "cpu"
    assert peers["jax"]["cpu_capability"] is None  # XLA compiles for the host: no level to name
