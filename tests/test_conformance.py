"""Every registered implementation agrees with ``dense`` on every interface method, step
after step (scipy's test_kdtree pattern: one body, every implementation).

The tolerances are those of :mod:`sublin_bench.conformance` (documented there and in
README.md). A comparison may stop early at a genuine threshold tie or at the rounding
horizon of an ill-conditioned trajectory; it may never disagree.
"""

import numpy as np
import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

from sublin_bench.impls.cupy_band import ArrayBandTrainer
from sublin_bench.impls.band import BandTrainer
from sublin_bench.impls.dense import DenseTrainer
from sublin_bench.impls.tree import TreeTrainer
from sublin_bench import Problem, ProblemSpec, make_problem, registry
from sublin_bench.cli import VERIFY_GRID
from sublin_bench.conformance import AGREE, DISAGREE, compare

from .helpers import custom_problem

# "array-band" is the GPU implementation's algorithm run with numpy, so that every line of
# it is checked here on machines without a GPU (impls/cupy_band.py)
registry.register("array-band", ArrayBandTrainer)


class _GivenOrder:
    """The sparse implementations store neurons firing-first by default; these variants
    keep the problem's order, so that both layouts are checked against dense."""

    def __init__(self, problem, **options):
        super().__init__(problem, neuron_order="given", **options)


registry.register("tree-given", type("TreeGivenOrder", (_GivenOrder, TreeTrainer), {"name": "tree-given"}))
registry.register("band-given", type("BandGivenOrder", (_GivenOrder, BandTrainer), {"name": "band-given"}))
# approximate implementations (lsh) are measured instead: tests/test_lsh.py
IMPLS = [name for name in registry.names() if name != "dense" and registry.get(name).exact]
STEPS = 4


def _require(name):
    ok, reason = registry.available(name)
    if not ok:
        pytest.skip(f"{name} not available: {reason}")


@st.composite
def specs(draw):
    m = draw(st.one_of(st.integers(1, 40), st.integers(41, 3000)))
    return ProblemSpec(
        m=m,
        n=draw(st.integers(1, 40)),
        d=draw(st.integers(1, 20)),
        alpha=draw(st.floats(0.0, 0.9)),
        seed=draw(st.integers(0, 2**20)),
        dtype=draw(st.sampled_from(["float64", "float32"])),
    )


@pytest.mark.parametrize("name", IMPLS)
@given(spec=specs(), eta=st.sampled_from([1.0, 0.5, 0.25, 1.5, 2.0]))
def test_agrees_with_dense(name, spec, eta):
    _require(name)
    c = compare(make_problem(spec), name, steps=STEPS, step_size=eta)
    event(f"status: {c.status}")
    note(f"{spec.describe()} eta={eta}: {c.status} {c.message} worst={c.worst}")
    assert c.status != DISAGREE, c.message


@pytest.mark.parametrize("name", IMPLS)
@pytest.mark.parametrize("grid", VERIFY_GRID, ids=lambda g: "m{}-n{}-d{}-a{}-{}-eta{}".format(*g))
def test_verify_grid_agrees_on_every_step(name, grid):
    """On well-conditioned problems the comparison must run to the end, not stop early:
    this keeps the early-stopping rules from hiding anything."""
    _require(name)
    m, n, d, alpha, dtype, eta = grid
    c = compare(make_problem(ProblemSpec(m=m, n=n, d=d, alpha=alpha, dtype=dtype)), name, steps=6, step_size=eta)
    assert c.status == AGREE and c.steps_compared == 6, c.message


def _corner_cases():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((300, 3))
    a = np.where(rng.random(300) < 0.5, -1, 1)
    X = rng.standard_normal((12, 3))
    y = rng.standard_normal(12)
    cases = {
        # b so high that nothing fires anywhere: G = 0, g = 0, nothing moves
        "nothing-fires": custom_problem(X, y, W, a, b=50.0),
        # some inputs fire nothing (singular Gram), others fire a few neurons
        "some-inputs-empty": Problem.from_arrays(X, y, m=16, alpha=0.0, b=2.0, seed=4),
        # duplicated inputs with different labels: inconsistent, least squares averages
        "duplicates": custom_problem(np.vstack([X[:4], X[:4]]), rng.standard_normal(8), W, a, b=0.5),
        # every neuron fires on every input
        "all-fire": custom_problem(np.abs(X) + 0.1, y, np.abs(W) + 1.0, a, b=0.0),
        "n1": custom_problem(X[:1], y[:1], W, a, b=0.3),
        "d1": custom_problem(np.sign(X[:, :1]), y, W[:, :1], a, b=0.2),
        "m1": custom_problem(X, y, W[:1], a[:1], b=0.0),
        "m1-n1-d1": custom_problem([[1.0]], [0.5], [[0.7]], [1], b=0.0),
        "float32-all-fire": custom_problem(np.abs(X) + 0.1, y, np.abs(W) + 1.0, a, b=0.0, dtype="float32"),
    }
    return cases


CORNERS = _corner_cases()


def test_corner_cases_are_what_they_claim():
    t = DenseTrainer(CORNERS["nothing-fires"])
    assert t.active_sets()[1].size == 0
    k = np.diff(DenseTrainer(CORNERS["some-inputs-empty"]).active_sets()[0])
    assert (k == 0).any() and (k > 0).any()
    k = np.diff(DenseTrainer(CORNERS["all-fire"]).active_sets()[0])
    assert (k == 300).all()


@pytest.mark.parametrize("name", IMPLS)
@pytest.mark.parametrize("case", list(CORNERS))
@pytest.mark.parametrize("eta", [1.0, 0.5])
def test_corner_cases(name, case, eta):
    _require(name)
    c = compare(CORNERS[case], name, steps=5, step_size=eta)
    assert c.status != DISAGREE, c.message


def test_nothing_fires_means_nothing_moves():
    for name in ["dense", *IMPLS]:
        if not registry.available(name)[0]:
            continue
        t = registry.create(name, CORNERS["nothing-fires"])
        info = t.step()
        assert info.moved == 0 and info.flips == 0
        assert np.array_equal(t.weights(), CORNERS["nothing-fires"].W0)
        assert np.array_equal(t.gram(), np.zeros((12, 12)))


# -- the suite must be able to fail: planted bugs in an otherwise correct trainer --------


class _PredictOff(DenseTrainer):
    def _predictions(self):
        return self._f * (1 + 1e-7)


class _GramOff(DenseTrainer):
    def _counts(self):
        C = self._C.copy()
        C[-1, -1] += 1
        return C


class _DropsANeuron(DenseTrainer):
    def active_sets(self):
        indptr, indices = super().active_sets()
        keep = np.ones(indices.size, bool)
        keep[indptr[1] - 1 : indptr[1]] = False  # last neuron of input 0
        counts = np.diff(indptr)
        counts[0] = max(0, counts[0] - 1)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), indices[keep]


class _StepOff(DenseTrainer):
    def _update(self, g):
        return super()._update(g * (1 + 1e-6))


class _ThresholdGe(DenseTrainer):
    """Uses the threshold of a slightly wider network: fires a little too often."""

    def __init__(self, problem, **kw):
        super().__init__(problem, **kw)
        self._bt = self._bt * (1 - 1e-3)
        self._f, self._C = self._refresh(None, None)


@pytest.mark.parametrize("mutant", [_PredictOff, _GramOff, _DropsANeuron, _StepOff, _ThresholdGe])
def test_planted_bugs_are_caught(mutant):
    registry.register("mutant", mutant)
    p = make_problem(ProblemSpec(m=2000, n=12, d=6, alpha=0.3, seed=1))
    c = compare(p, "mutant", steps=3)
    assert c.status == DISAGREE, (mutant.__name__, c.status, c.message)
