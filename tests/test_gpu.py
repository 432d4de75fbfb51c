"""The GPU implementations: availability without a GPU (always tested), and on a machine
with CuPy and a CUDA device, their specific contract (tests marked ``gpu``). Their
agreement with dense runs in tests/test_conformance.py like every implementation's."""

import sys
import types

import numpy as np
import pytest

from sublin_bench.impls import _gpu
from sublin_bench import ProblemSpec, UnavailableError, make_problem, registry

GPU_IMPLS = ["cupy-dense", "cupy"]


@pytest.fixture
def fresh_probe():
    _gpu.cupy_status.cache_clear()
    yield
    _gpu.cupy_status.cache_clear()


def _fake_cupy(count=None, error=None):
    mod = types.ModuleType("cupy")
    runtime = types.SimpleNamespace()

    def get_count():
        if error:
            raise error
        return count

    runtime.getDeviceCount = get_count
    mod.cuda = types.SimpleNamespace(runtime=runtime)
    return mod


def test_listed_even_without_cupy():
    names = registry.names()
    for name in GPU_IMPLS:
        assert name in names
        ok, reason = registry.available(name)
        if not ok:
            assert "CuPy" in reason


def test_no_cupy_says_how_to_install(fresh_probe, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import fails
    for name in GPU_IMPLS:
        ok, reason = registry.available(name)
        assert not ok and "pip install -e .[gpu]" in reason


def test_cupy_without_device(fresh_probe, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(error=RuntimeError("cudaErrorNoDevice")))
    ok, reason = registry.available("cupy")
    assert not ok and "no CUDA device is usable" in reason and "cudaErrorNoDevice" in reason
    with pytest.raises(UnavailableError, match="no CUDA device"):
        registry.create("cupy", make_problem(ProblemSpec(m=16, n=2, d=2, alpha=0.2)))


def test_cupy_with_zero_devices(fresh_probe, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(count=0))
    assert registry.available("cupy-dense") == (False, "CuPy is installed but no CUDA device was found")


def test_probe_is_cached(fresh_probe, monkeypatch):
    calls = []
    fake = _fake_cupy(count=1)
    fake.cuda.runtime.getDeviceCount = lambda: calls.append(1) or 1
    monkeypatch.setitem(sys.modules, "cupy", fake)
    for _ in range(3):
        _gpu.cupy_status()
    assert len(calls) == 1


@pytest.mark.gpu
@pytest.mark.parametrize("name", GPU_IMPLS)
def test_gpu_trainer_returns_host_arrays_and_syncs(name):
    ok, reason = registry.available(name)
    if not ok:
        pytest.skip(reason)
    t = registry.create(name, make_problem(ProblemSpec(m=2**14, n=16, d=16, alpha=0.5)))
    assert isinstance(t.predict(), np.ndarray) and isinstance(t.gram(), np.ndarray)
    assert isinstance(t.weights(), np.ndarray)
    indptr, indices = t.active_sets()
    assert isinstance(indptr, np.ndarray) and indices.dtype == np.int64
    info = t.step()
    assert info.seconds > 0 and "work" in info.work
