"""The tree and band indexes on their own: after arbitrary sequences of weight moves, the
reported fired sets equal brute force (Hypothesis stateful testing)."""

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sublin_bench.impls.band import BandTrainer
from sublin_bench.impls.band_implicit import BandImplicitTrainer
from sublin_bench.impls.tree import TreeTrainer
from sublin_bench import ProblemSpec, make_problem, registry

from .helpers import custom_problem


def brute_force(W, X, b):
    Z = W.astype(np.float64) @ X.astype(np.float64).T
    return Z, Z > b


class IndexMachine(RuleBasedStateMachine):
    """Moves the fired neurons by arbitrary updates and asks the index."""

    cls = None

    @initialize(
        m=st.integers(1, 300),
        n=st.integers(1, 5),
        d=st.integers(1, 4),
        b=st.floats(0.0, 2.0),
        seed=st.integers(0, 1000),
        dtype=st.sampled_from(["float64", "float32"]),
        options=st.sampled_from([
            {}, {"leaf_size": 1}, {"leaf_size": 4, "fanout": 2}, {"fanout": 16}, {"leaf_size": 2, "fanout": 4},
            {"margin": 0.05}, {"margin": 1.0}, {"neuron_order": "given"},
            {"neuron_order": "given", "leaf_size": 2}, {"neuron_order": "given", "margin": 0.05},
        ]),
    )
    def build(self, m, n, d, b, seed, dtype, options):
        rng = np.random.default_rng(seed)
        own = ("leaf_size", "fanout") if self.cls is TreeTrainer else ("margin",)
        options = {k: v for k, v in options.items() if k in own or k == "neuron_order"}
        X = rng.standard_normal((n, d))
        W = rng.standard_normal((m, d))
        a = np.where(rng.random(m) < 0.5, -1, 1)
        self.t = self.cls(custom_problem(X, np.zeros(n), W, a, b=b, dtype=dtype), **options)
        self.rng = rng

    @rule(scale=st.sampled_from([1e-6, 0.01, 0.3, 3.0, 30.0]), sign=st.sampled_from([-1.0, 1.0, 0.0]))
    def move(self, scale, sign):
        """An update in the index's own language: the fired neurons move by
        ``coef a_r sum_i g_i x_i`` for an arbitrary ``g`` (not the least-squares one), with
        scales from rounding-level to far across the threshold and the band margin."""
        t = self.t
        g = self.rng.normal(0, scale, t.problem.n) + sign * scale
        res = t._update(g)
        assert res.work["work"] >= 0

    @invariant()
    def fired_sets_equal_brute_force(self):
        """Over all m neurons, in the problem's order (``weights()``: the stored rows and,
        for band-implicit, ``W0`` for the rows it never stored)."""
        t = self.t
        Z, fired = brute_force(t.weights(), t._X, t.problem.b)
        # a floating-point evaluation of <w_r, x_i> is within (d + 2) u ||w_r|| of the
        # exact value; closer to b than twice that, either answer is right
        u = np.finfo(t.problem.dtype).eps / 2
        rn = np.linalg.norm(t.weights().astype(np.float64), axis=1)[:, None]
        tie = np.abs(Z - t.problem.b) <= 4 * (t.problem.d + 2) * u * rn + 1e-300
        ptr, idx, z = t._fired_csr()
        assert np.array_equal(t.active_sets()[0], ptr) and np.array_equal(t.active_sets()[1], idx)
        for i in range(t.problem.n):
            got = np.zeros(t.problem.m, bool)
            got[idx[ptr[i] : ptr[i + 1]]] = True
            wrong = (got != fired[:, i]) & ~tie[:, i]
            assert not wrong.any(), f"input {i}: neurons {np.flatnonzero(wrong)[:5]}"
            row = idx[ptr[i] : ptr[i + 1]]
            assert np.all(np.diff(row) > 0)
            np.testing.assert_allclose(z[ptr[i] : ptr[i + 1]], Z[row, i], rtol=1e-5, atol=1e-5)


class TreeMachine(IndexMachine):
    cls = TreeTrainer

    @invariant()
    def keys_bound_values_and_heap_is_max(self):
        t = self.t
        Z, _ = brute_force(t.weights(), t._X, t.problem.b)
        keys = t.keys_matrix()  # the problem's order, like weights()
        assert np.all(keys.astype(np.float64) >= Z - 1e-12 * (1 + np.abs(Z)))
        if t._perm is not None:
            keys = keys[t._perm]  # the leaves hold the neurons in the stored order
        B, L, F, m, bq = t._B, t._L, t._F, t.problem.m, t._bq
        # the query's invariant: a node equals the largest key below it wherever that key
        # or the node exceeds b (rounded down); keys below b are unconstrained
        top = np.full((2 * B, t.problem.n), -np.inf, dtype=np.float32)
        for j in range(-(-m // L)):
            top[B + j] = keys[j * L : (j + 1) * L].max(axis=0)
        lo = B
        while lo > 1:
            lo //= F
            for k in range(lo, 2 * lo):
                top[k] = top[F * k : F * k + F].max(axis=0)
        nodes = [k for k in range(1, 2 * B) if k >= B or any(lv <= k < 2 * lv for lv in _levels(B, F))]
        heap = t._heap.T  # (2B, n) like top
        live = (top[nodes] > bq) | (heap[nodes] > bq)
        assert np.array_equal(heap[nodes][live], top[nodes][live])


def _levels(B, F):
    lv, out = 1, []
    while lv < B:
        out.append(lv)
        lv *= F
    return out


class BandMachine(IndexMachine):
    cls = BandTrainer

    @invariant()
    def band_invariant_holds(self):
        t = self.t
        b, D = t.problem.b, t.margin
        drift = np.linalg.norm(t._W.astype(np.float64) - t._anchor.astype(np.float64), axis=1)
        assert np.all(drift <= D)
        Zbar = t._anchor.astype(np.float64) @ t._X64.T
        for i in range(t.problem.n):
            cand = np.zeros(t.problem.m, bool)
            cand[t._cidx[t._cptr[i] : t._cptr[i + 1]]] = True
            outside = ~cand
            assert np.all(Zbar[outside, i] <= b - D + 1e-9)
        assert not t._moved.any()  # the flags are left clean


class BandImplicitMachine(IndexMachine):
    cls = BandImplicitTrainer

    @invariant()
    def state_is_the_firing_neurons_with_their_candidates(self):
        """The kept neurons are exactly the stored rows that fire, each with its fired
        inputs inside its candidates, and a drift bound in [0, D]."""
        t = self.t
        U, uptr, cptr = t._U, t._uptr, t._cptr
        assert np.all(np.diff(U) > 0) and np.all(np.diff(uptr) > 0)  # ascending; none fires on nothing
        assert np.all(np.diff(cptr) >= np.diff(uptr))
        for q in range(U.size):
            fired = t._uinp[uptr[q] : uptr[q + 1]]
            cand = t._cinp[cptr[q] : cptr[q + 1]]
            assert np.all(np.diff(cand) > 0) and np.isin(fired, cand).all()
        assert np.all((t._drift >= 0) & (t._drift <= t.margin))
        firing = np.unique(t.active_sets()[1])
        np.testing.assert_array_equal(np.sort(t._perm[U]), firing)


TestTreeIndex = TreeMachine.TestCase
TestBandIndex = BandMachine.TestCase
TestBandImplicitIndex = BandImplicitMachine.TestCase
for case in (TestTreeIndex, TestBandIndex, TestBandImplicitIndex):
    case.settings = settings(max_examples=30, stateful_step_count=8, deadline=None)


@pytest.mark.parametrize("name", ["tree", "band"])
def test_active_regime_agrees_for_many_steps(name):
    """alpha = 0.5: weights move far and many activations flip; 12 consecutive steps."""
    from sublin_bench.conformance import AGREE, compare

    p = make_problem(ProblemSpec(m=2**13, n=24, d=12, alpha=0.5, seed=7))
    c = compare(p, name, steps=12)
    assert c.status == AGREE and c.steps_compared == 12, c.message
    t = registry.create(name, p)
    flips = sum(i.flips for i in t.run(12))
    assert flips > 100  # the regime really is active


def test_band_reanchors_when_pushed_across_the_margin():
    """A small margin forces re-anchoring during training; results stay exact."""
    from sublin_bench.conformance import AGREE, compare

    p = make_problem(ProblemSpec(m=4096, n=16, d=8, alpha=0.5, seed=3))
    t = BandTrainer(p, margin=1e-3)
    reanchored = sum(i.work["neurons_reanchored"] for i in t.run(4))
    assert reanchored > 0
    from sublin_bench import registry as reg

    class SmallMargin(BandTrainer):
        def __init__(self, problem, **kw):
            super().__init__(problem, margin=1e-3, **kw)

    reg.register("band-small-margin", SmallMargin)
    c = compare(p, "band-small-margin", steps=6)
    assert c.status == AGREE, c.message


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "wide"])
def test_band_rejects_bad_margin(bad):
    from sublin_bench import ConfigError

    with pytest.raises(ConfigError, match="margin"):
        BandTrainer(make_problem(ProblemSpec(m=16, n=2, d=2, alpha=0.3)), margin=bad)


@pytest.mark.parametrize("bad", [0, 3, -4])
def test_tree_rejects_bad_leaf_size(bad):
    from sublin_bench import ConfigError

    with pytest.raises(ConfigError, match="leaf_size"):
        TreeTrainer(make_problem(ProblemSpec(m=16, n=2, d=2, alpha=0.3)), leaf_size=bad)


@pytest.mark.parametrize("bad", [1, 3, 32])
def test_tree_rejects_bad_fanout(bad):
    from sublin_bench import ConfigError

    with pytest.raises(ConfigError, match="fanout"):
        TreeTrainer(make_problem(ProblemSpec(m=16, n=2, d=2, alpha=0.3)), fanout=bad)


@pytest.mark.parametrize("m", [1, 7, 2**10, 2**16 + 3, 2**20, 2**22])
def test_default_heap_is_no_larger_than_the_keys(m):
    L = TreeTrainer.default_leaf_size(m)
    B = TreeTrainer._heap_leaves(m, L)
    assert L == 16 and B >= -(-m // L)
    assert 2 * B <= L * -(-m // L)  # heap floats per input <= leaf keys per input


@pytest.mark.parametrize("cls", [BandTrainer, BandImplicitTrainer])
def test_drift_accumulated_over_small_steps_reanchors(cls):
    """A neuron that fires on x1 walks along x1 by 0.2 per step (each step well inside the
    margin 0.5); x2 = (0.6, 0.8) starts outside its candidates (z = 0.32 <= b - D) and
    fires from the sixth step on. Only a drift kept across steps catches that."""
    X = [[1.0, 0.0], [0.6, 0.8]]
    t = cls(custom_problem(X, [0.0, 0.0], [[1.2, -0.5]], [1], b=1.0), margin=0.5)
    assert t.active_sets()[0].tolist() == [0, 1, 1]  # fires on x1 only
    for k in range(1, 9):
        t._update(np.array([-0.2, 0.0]))  # w += 0.2 x1 (m = 1, a = +1, step size 1)
        z2 = 0.32 + 0.12 * k
        assert t.active_sets()[0].tolist() == ([0, 1, 2] if z2 > 1.0 else [0, 1, 1]), k
