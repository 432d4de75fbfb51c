"""Block-regenerable problems and the sampled initialisation: determinism, the laws the
samples must follow (tested statistically, with fixed seeds so the outcome is
reproducible), and the implicit implementations built on them."""

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from sublin_bench import ConfigError, MemoryBudgetError, ProblemSpec, make_problem, registry
from sublin_bench import memory as memory_mod
from sublin_bench.conformance import AGREE, compare
from sublin_bench.generator import W_BLOCK, candidate_threshold, signs


def test_any_block_regenerates_alone_bit_for_bit_in_another_process():
    spec = ProblemSpec(m=3 * W_BLOCK + 17, n=4, d=5, alpha=0.3, seed=7)
    p = make_problem(spec)
    W = p.W0
    for k in range(4):
        assert np.array_equal(p.w0_block(k), W[k * W_BLOCK : (k + 1) * W_BLOCK])
    assert np.array_equal(p.w0_rows(W_BLOCK - 3, 2 * W_BLOCK + 5), W[W_BLOCK - 3 : 2 * W_BLOCK + 5])
    code = ("from sublin_bench import ProblemSpec, make_problem; import sys; "
            "p = make_problem(ProblemSpec(m=3 * 2**16 + 17, n=4, d=5, alpha=0.3, seed=7)); "
            "sys.stdout.write(p.w0_block(2).tobytes().hex())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert bytes.fromhex(out.stdout) == W[2 * W_BLOCK : 3 * W_BLOCK].tobytes()


def test_signs_are_fair_and_a_pure_function_of_seed_and_index():
    a = signs(3, np.arange(200_000))
    assert set(np.unique(a)) == {-1, 1}
    assert abs(a.mean()) < 4 / np.sqrt(a.size)
    assert np.array_equal(signs(3, [5, 199_999]), a[[5, 199_999]])
    assert not np.array_equal(signs(4, np.arange(64)), a[:64])
    p = make_problem(ProblemSpec(m=1000, n=2, d=2, alpha=0.2, seed=3))
    assert np.array_equal(p.a, a[:1000]) and np.array_equal(p.a_at([999, 0]), a[[999, 0]])


def test_w0_in_memory_is_refused_when_it_does_not_fit(monkeypatch):
    p = make_problem(ProblemSpec(m=2**20, n=4, d=8, alpha=0.5))
    monkeypatch.setattr(memory_mod, "available_bytes", lambda: 1 << 20)
    with pytest.raises(MemoryBudgetError, match="W0 of"):
        p.W0
    assert p.w0_block(3).shape == (W_BLOCK, 8)  # blocks still come


# -- the sampled initialisation ---------------------------------------------------------

SMALL = dict(n=8, d=4, alpha=0.5)


def _candidates(W, X, t0):
    return (W @ X.T).max(axis=1) > t0


def test_sampled_rows_are_the_candidates_and_the_rest_are_not():
    p = make_problem(ProblemSpec(m=2**15, seed=2, init="sampled", **SMALL))
    assert p.init == "sampled" and p.sample.t0 == candidate_threshold(p.b)
    cand = _candidates(p.W0, p.X, p.sample.t0)
    assert np.array_equal(np.flatnonzero(cand), p.sample.idx)
    assert np.array_equal(p.W0[p.sample.idx], p.sample.W)
    assert np.array_equal(p.a[p.sample.idx], p.sample.a)


def test_candidate_counts_follow_their_binomial_law():
    """Count of candidates at m = 2^14 over 24 seeds against m p, p estimated from 2^21
    plain rows of the same inputs (the inputs depend only on the seed's X stream)."""
    m = 2**14
    counts = []
    for seed in range(24):
        p = make_problem(ProblemSpec(m=m, seed=seed, init="sampled", **SMALL))
        ref = make_problem(ProblemSpec(m=2**21, seed=seed, **SMALL))
        prob = float(np.mean(_candidates(ref.w0_rows(0, 2**21), ref.X, p.sample.t0)))
        counts.append((p.sample.idx.size - m * prob) / np.sqrt(m * prob * (1 - prob)))
    z = np.asarray(counts)
    assert abs(z.mean()) * np.sqrt(z.size) < 4  # the mean of standardised counts is ~N(0, 1/24)
    assert 0.5 < z.std() < 1.6  # and their spread is binomial, not more or less


def test_sampled_candidate_rows_have_the_conditional_law_of_plain_ones():
    """Two-sample tests of the candidates of a sampled and of a plain problem (same inputs,
    m = 2^20, alpha = 0.3: about 28000 candidates each): their largest pre-activation, the
    number of inputs they exceed t0 on, their norm and a coordinate."""
    spec = ProblemSpec(m=2**20, seed=5, **(SMALL | {"alpha": 0.3}))
    plain = make_problem(spec)
    sampled = make_problem(spec.replace(init="sampled"))
    t0 = sampled.sample.t0
    Wp = plain.W0[_candidates(plain.W0, plain.X, t0)]
    Ws = sampled.sample.W
    assert min(len(Wp), len(Ws)) > 5000
    Zp, Zs = Wp @ plain.X.T, Ws @ sampled.X.T
    for a, b in [(Zp.max(1), Zs.max(1)), (np.linalg.norm(Wp, axis=1), np.linalg.norm(Ws, axis=1)),
                 (Wp[:, 0], Ws[:, 0])]:
        assert stats.ks_2samp(a, b).pvalue > 1e-3
    cp, cs = (Zp > t0).sum(1), (Zs > t0).sum(1)
    top = int(max(cp.max(), cs.max()))
    table = np.array([[np.sum(np.minimum(c, 3) == k) for k in range(1, 4)] for c in (cp, cs)])
    assert stats.chi2_contingency(table[:, table.sum(0) > 0]).pvalue > 1e-3, (table, top)


def test_sampled_non_candidate_rows_are_gaussian_conditioned_below_t0():
    p = make_problem(ProblemSpec(m=2**16, seed=1, init="sampled", **SMALL))
    W = p.W0
    rest = np.setdiff1d(np.arange(p.m), p.sample.idx)
    Z = W[rest] @ p.X.T
    assert Z.max() <= p.sample.t0
    # p(candidate) ~ 1%: the non-candidates are within a hair of N(0, 1) coordinate-wise
    for c in range(p.d):
        assert stats.kstest(W[rest, c], "norm").pvalue > 1e-3
    assert stats.kstest((W @ p.X[0]), "norm").pvalue > 1e-3  # all rows: exactly N(0, 1)


def test_plain_and_sampled_trajectories_agree_in_distribution():
    """m = 2^16, 10 seeds each: the fired count at t = 0 and the residual after two steps
    of band-implicit, plain against sampled (Welch t-test and a KS test)."""
    def traj(init):
        fired, res = [], []
        for seed in range(10):
            p = make_problem(ProblemSpec(m=2**16, n=16, d=8, alpha=0.5, seed=seed, init=init))
            t = registry.create("band-implicit", p)
            infos = t.run(3)
            fired.append(infos[0].fired_mean)
            res.append(infos[2].residual_norm / infos[0].residual_norm)
        return np.array(fired), np.array(res)

    (fp, rp), (fs, rs) = traj("plain"), traj("sampled")
    assert stats.ttest_ind(fp, fs, equal_var=False).pvalue > 1e-3
    assert stats.ks_2samp(rp, rs).pvalue > 1e-3


def test_sampled_init_falls_back_to_plain_where_it_cannot_apply():
    p = make_problem(ProblemSpec(m=4096, n=8, d=4, alpha=0.0, init="sampled"))
    assert p.init == "plain" and p.sample is None and "n Q(b - D0)" in p.note


def test_a_sampled_problem_cannot_be_narrowed():
    p = make_problem(ProblemSpec(m=4096, init="sampled", **SMALL))
    with pytest.raises(ConfigError, match="cannot be narrowed"):
        p.narrowed(p.spec.replace(m=2048))


# -- the implicit implementations -------------------------------------------------------


@pytest.mark.parametrize("init", ["plain", "sampled"])
@pytest.mark.parametrize("name", ["dense", "tree", "band", "band-implicit", "dense-stream"])
def test_every_exact_implementation_agrees_with_dense_on_both_inits(name, init):
    p = make_problem(ProblemSpec(m=2**14, n=12, d=6, alpha=0.5, seed=3, init=init))
    c = compare(p, name, steps=4)
    assert c.status == AGREE, c.message


@pytest.mark.parametrize("init", ["plain", "sampled"])
def test_band_implicit_against_dense_stream_on_rows_that_matter(init, monkeypatch):
    from sublin_bench import conformance

    monkeypatch.setattr(conformance, "ALL_ROWS_BYTES", 0)  # the large-m path, at small m
    p = make_problem(ProblemSpec(m=2**17, n=16, d=8, alpha=0.5, seed=1, init=init))
    c = compare(p, "band-implicit", steps=3, reference="dense-stream")
    assert c.status == AGREE and c.steps_compared == 3, c.message


@pytest.mark.parametrize("init", ["plain", "sampled"])
def test_band_implicit_holds_no_array_of_m_numbers(init):
    m = 2**20
    p = make_problem(ProblemSpec(m=m, n=16, d=8, alpha=0.5, init=init))
    t = registry.create("band-implicit", p)
    t.run(2)
    sizes = {k: v.shape[0] for k, v in vars(t).items() if isinstance(v, np.ndarray) and v.ndim}
    assert max(sizes.values()) < m // 20, sizes
    assert t.stored < m // 20
    assert p._W0 is None  # the problem never generated W0 whole


def test_weights_at_matches_weights():
    p = make_problem(ProblemSpec(m=2**17, n=8, d=4, alpha=0.5, seed=4, init="sampled"))
    for name in ("band-implicit", "dense-stream"):
        t = registry.create(name, p)
        t.run(3)
        W = t.weights()
        idx = np.unique(np.concatenate([t.active_sets()[1], [0, 70000, 2**17 - 1]]))
        assert np.array_equal(t.weights_at(idx), W[idx]), name


@pytest.mark.parametrize("margin", [0.05, 1.0, 3.0])
def test_band_implicit_serves_any_margin_from_a_sample(margin):
    """The sample holds every neuron above t0 = b - D0 <= b, so every neuron that fires at
    W0: a margin wider than D0 only widens the candidate inputs of those."""
    p = make_problem(ProblemSpec(m=2**14, n=12, d=6, alpha=0.5, seed=5, init="sampled"))
    c = compare(p, "band-implicit", steps=4,
                create=lambda name, problem, **kw: registry.create(name, problem, margin=margin, **kw))
    assert c.status == AGREE, c.message
