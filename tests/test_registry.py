import json

import numpy as np
import pytest

from sublin_bench.impls.dense import DenseTrainer
from sublin_bench import (
    ConfigError,
    MemoryBudgetError,
    ProblemSpec,
    UnavailableError,
    UnknownImplementationError,
    make_problem,
    registry,
)
from sublin_bench import memory as memory_mod
from sublin_bench.runner import build_trainer


def small():
    return make_problem(ProblemSpec(m=256, n=4, d=3, alpha=0.2))


def test_builtins_are_found_through_entry_points():
    names = registry.names()
    assert names[0] == "dense"
    assert {"dense", "tree", "band"} <= set(names)
    for name in ("dense", "tree", "band"):
        assert registry.available(name) == (True, "")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownImplementationError) as exc:
        registry.create("tre", small())
    msg = str(exc.value)
    assert "'tre'" in msg and "dense" in msg and "tree" in msg


class _NeedsHardware(DenseTrainer):
    @classmethod
    def available(cls):
        return False, "needs a quantum annealer"


def test_unavailable_gives_the_reason():
    registry.register("qa", _NeedsHardware)
    assert registry.available("qa") == (False, "needs a quantum annealer")
    with pytest.raises(UnavailableError, match="needs a quantum annealer"):
        registry.create("qa", small())


def test_plugin_that_fails_to_import_is_listed_unavailable(monkeypatch):
    monkeypatch.setitem(registry._discover(), "broken", "no_such_module_xyz:Trainer")
    registry._load_errors.pop("broken", None)
    ok, reason = registry.available("broken")
    assert not ok and "ModuleNotFoundError" in reason and "no_such_module_xyz" in reason
    assert "broken" in registry.names()


def test_entry_point_must_name_a_trainer(monkeypatch):
    monkeypatch.setitem(registry._discover(), "notatrainer", "numpy:ndarray")
    registry._load_errors.pop("notatrainer", None)
    ok, reason = registry.available("notatrainer")
    assert not ok and "not a sublin_bench.Trainer" in reason


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "fast"])
def test_bad_step_size(bad):
    with pytest.raises(ConfigError, match="step_size"):
        registry.create("dense", small(), step_size=bad)


def test_create_needs_a_problem():
    with pytest.raises(ConfigError, match="needs a Problem"):
        registry.create("dense", ProblemSpec(m=4, n=1, d=1, alpha=0.1))


@pytest.mark.parametrize("name", ["dense", "tree", "band"])
def test_oversized_configuration_is_refused_before_allocating(name, monkeypatch):
    monkeypatch.setattr(memory_mod, "available_bytes", lambda: 64 << 20)
    with pytest.raises(MemoryBudgetError) as exc:
        build_trainer(name, ProblemSpec(m=2**22, n=32, d=32, alpha=0.24))
    assert "needs about" in str(exc.value) and "MiB is available" in str(exc.value)


@pytest.mark.parametrize("name", ["dense", "tree", "band"])
def test_memory_estimate_is_not_an_underestimate(name):
    """The estimate must cover what the trainer really holds (its arrays)."""
    spec = ProblemSpec(m=2**15, n=16, d=8, alpha=0.24)
    t = registry.create(name, make_problem(spec))
    t.run(2)
    held = sum(v.nbytes for v in vars(t).values() if isinstance(v, np.ndarray))
    assert held <= registry.get(name).memory_estimate(spec)


def test_trainer_interface_shapes_and_types():
    for name in registry.names():
        if not registry.available(name)[0]:
            continue
        t = registry.create(name, small())
        assert t.predict().dtype == np.float64 and t.predict().shape == (4,)
        indptr, indices = t.active_sets()
        assert indptr.dtype == np.int64 and indices.dtype == np.int64 and indptr.shape == (5,)
        G0 = t.gram()
        assert G0.shape == (4, 4)
        assert t.weights().shape == (256, 3)
        info = t.step()
        assert info.step == 0 and info.seconds >= 0 and "work" in info.work
        assert t.counters["steps"] == 1
        d = info.as_dict()
        assert set(d) >= {"residual_norm", "fired_mean", "fired_max", "flips", "moved", "seconds"}
        assert d["gram_method"] in ("cholesky", "eigh") and d["gram_rank"] == info.gram_solve.rank
        json.dumps(d)  # what `sublin-bench run` prints
        lam = np.linalg.eigvalsh(G0)  # G_t, the matrix the step solved with
        kept = lam[lam > lam[-1] * 4 * np.finfo(float).eps]
        assert d["gram_condition"] == pytest.approx(kept[-1] / kept[0], rel=1e-8)
        # weights() is a copy: mutating it does not change the trainer
        w = t.weights()
        w[:] = 0
        assert np.abs(t.weights()).sum() > 0
