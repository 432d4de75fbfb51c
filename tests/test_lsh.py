"""The approximate ``lsh`` implementation, and how the harness measures approximate ones.

An approximate implementation is not held to equality with ``dense``; what it must do
is checked (never report a neuron that does not fire, compute the Gauss-Newton step of
the sets it reports), what it may do is measured (recall, residual, prediction gap).
"""

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from sublin_bench import ProblemSpec, make_problem, registry
from sublin_bench.conformance import AGREE, DISAGREE, compare, compare_approximate, fired_truth, pair_keys, recall_precision
from sublin_bench.errors import ConfigError
from sublin_bench.impls.lsh import LSHTrainer


@st.composite
def specs(draw):
    return ProblemSpec(
        m=draw(st.one_of(st.integers(1, 40), st.integers(41, 3000))),
        n=draw(st.integers(1, 24)),
        d=draw(st.integers(1, 16)),
        alpha=draw(st.floats(0.0, 0.9)),
        seed=draw(st.integers(0, 2**20)),
        dtype=draw(st.sampled_from(["float64", "float32"])),
    )


@given(spec=specs(), eta=st.sampled_from([1.0, 0.5, 1.5]), K=st.integers(1, 6), L=st.integers(1, 12),
       thr=st.sampled_from([1e-6, 0.002, 1.0]))
@settings(max_examples=60, deadline=None)
def test_lsh_is_consistent_and_never_invents_a_neuron(spec, eta, K, L, thr):
    class Opt(LSHTrainer):
        def __init__(self, problem, **kw):
            super().__init__(problem, bits=K, tables=L, rebuild_threshold=thr, **kw)

    registry.register("lsh-opt", Opt)
    try:
        c = compare_approximate(make_problem(spec), "lsh-opt", steps=4, step_size=eta)
    finally:
        registry.unregister("lsh-opt")
    note(f"{spec.describe()} K={K} L={L} thr={thr}: {c.status} {c.message} recall={c.recall}")
    assert c.status == AGREE, c.message
    assert c.precision == [1.0] * 5
    assert all(0.0 <= r <= 1.0 for r in c.recall)


def test_with_every_neuron_retrieved_lsh_is_exact():
    """One bit per table and 64 tables: a neuron misses every bucket of a query with
    probability about 0.63^64 ~ 1e-13, so every neuron is verified and the found sets are
    the fired sets; then the exact comparison with dense must hold step after step
    (which exercises the re-hashing, the dirty list and the rebuilds)."""
    class All(LSHTrainer):
        def __init__(self, problem, **kw):
            super().__init__(problem, bits=1, tables=64, rebuild_threshold=1e-4, **kw)

    registry.register("lsh-all", All)
    try:
        for alpha in (0.24, 0.5):
            c = compare(make_problem(ProblemSpec(m=4096, n=16, d=8, alpha=alpha)), "lsh-all", steps=6)
            assert c.status == AGREE and c.steps_compared == 6, c.message
    finally:
        registry.unregister("lsh-all")


def test_rebuilding_changes_no_answer():
    """The tables answer for the current codes whether or not they were rebuilt: a
    rebuild every step and none at all give the same fired sets and weights."""
    p = make_problem(ProblemSpec(m=2**13, n=16, d=8, alpha=0.3, seed=3))
    always = LSHTrainer(p, bits=3, tables=8, rebuild_threshold=1e-12)
    never = LSHTrainer(p, bits=3, tables=8, rebuild_threshold=1.0)
    for _ in range(5):
        a, b = always.step(), never.step()
        assert a.work["rebuilds"] == 1 and b.work["rebuilds"] == 0
        for x, y in zip(always.active_sets(), never.active_sets()):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(always.weights(), never.weights())
    assert always.rebuilds == 5 and never.rebuilds == 0


def test_more_tables_find_more():
    p = make_problem(ProblemSpec(m=2**14, n=32, d=16, alpha=0.5))
    W = p.W0.astype(np.float64)
    truth = fired_truth(W, p.X, p.b, "float64")
    recalls = []
    for L in (1, 4, 16):
        t = LSHTrainer(p, bits=3, tables=L)
        recalls.append(recall_precision(pair_keys(t.active_sets(), p.m), truth)[0])
    assert recalls[0] < recalls[1] < recalls[2]


class _Inventing(LSHTrainer):
    """Planted bug: reports, for input 0, one neuron that does not fire."""

    def active_sets(self):
        ptr, idx = super().active_sets()
        W = self.weights()
        z = W @ self.problem.X[0].astype(np.float64)
        cold = int(np.argmin(z))
        row = np.union1d(idx[ptr[0] : ptr[1]], [cold])
        return (np.concatenate([[0], ptr[1:] + (row.size - (ptr[1] - ptr[0]))]).astype(np.int64),
                np.concatenate([row, idx[ptr[1] :]]).astype(np.int64))


class _WrongStep(LSHTrainer):
    """Planted bug: the update uses half the solved g (not the step of its own sets)."""

    def _update(self, g):
        return super()._update(0.5 * g)


class _WrongPredict(LSHTrainer):
    def _predictions(self):
        return super()._predictions() * (1 + 1e-6)


@pytest.mark.parametrize("cls,what", [(_Inventing, "does not fire"), (_WrongStep, "Gauss-Newton update"),
                                      (_WrongPredict, "predict()")])
def test_planted_bugs_fail(cls, what):
    registry.register("lsh-bug", type("Bug", (cls,), {"name": "lsh-bug"}))
    try:
        c = compare_approximate(make_problem(ProblemSpec(m=2**12, n=16, d=8, alpha=0.3)), "lsh-bug", steps=3)
    finally:
        registry.unregister("lsh-bug")
    assert c.status == DISAGREE and what in c.message, c.message


def test_recall_precision_counts_pairs():
    m = 10
    from sublin_bench.conformance import FiredTruth

    truth = FiredTruth(sure=np.array([1, 12, 25]), possible=np.array([1, 3, 12, 25]))
    r, p, wrong = recall_precision(np.array([1, 3, 12]), truth)  # 3 is a tie, found: counts as fired
    assert r == pytest.approx(3 / 4) and p == 1.0 and wrong.size == 0
    r, p, wrong = recall_precision(np.array([1, 7]), truth)
    assert r == pytest.approx(1 / 3) and p == 0.5 and list(wrong) == [7]
    assert pair_keys((np.array([0, 1, 2]), np.array([3, 5])), m).tolist() == [3, 15]


def test_lsh_declares_itself_approximate():
    cls = registry.get("lsh")
    assert cls.exact is False and cls.sublinear is False
    assert all(registry.get(n).exact for n in ("dense", "tree", "band", "band-implicit", "dense-stream"))


@pytest.mark.parametrize("kw,msg", [
    ({"bits": 0}, "bits"), ({"bits": 17}, "bits"), ({"bits": 2.5}, "bits"), ({"tables": 0}, "tables"),
    ({"rebuild_threshold": 0}, "rebuild_threshold"), ({"rebuild_threshold": "x"}, "rebuild_threshold"),
    ({"hash_seed": -1}, "hash_seed"),
])
def test_bad_options_are_refused(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        registry.create("lsh", make_problem(ProblemSpec(m=64, n=4, d=3, alpha=0.2)), **kw)


def test_memory_estimate_covers_the_arrays():
    spec = ProblemSpec(m=2**15, n=16, d=8, alpha=0.24)
    t = registry.create("lsh", make_problem(spec))
    t.run(2)
    held = sum(v.nbytes for v in vars(t).values() if isinstance(v, np.ndarray))
    assert held <= registry.get("lsh").memory_estimate(spec)
