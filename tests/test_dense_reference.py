"""``dense`` against the definition: an explicitly formed Jacobian (not the closed form)."""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sublin_bench import ProblemSpec, make_problem, registry

EPS = np.finfo(np.float64).eps


def explicit_iteration(W, X, y, a, b, eta):
    """Predictions, fired mask, Gram and next weights, straight from the README's mathematics section."""
    m, d = W.shape
    n = X.shape[0]
    Z = W @ X.T
    fired = Z > b
    f = (a[:, None] * np.maximum(Z - b, 0.0)).sum(axis=0) / math.sqrt(m)
    J = np.zeros((n, m * d))
    for i in range(n):
        for r in range(m):
            if fired[r, i]:
                J[i, r * d : (r + 1) * d] = a[r] / math.sqrt(m) * X[i]
    G = J @ J.T
    g = np.linalg.pinv(G, rcond=1e-12, hermitian=True) @ (f - y)
    W_next = W - eta * (J.T @ g).reshape(m, d)
    return f, fired, G, W_next


@given(
    m=st.integers(1, 120),
    n=st.integers(1, 8),
    d=st.integers(1, 5),
    alpha=st.floats(0.0, 0.6),
    seed=st.integers(0, 10_000),
    eta=st.sampled_from([1.0, 0.5]),
)
def test_dense_matches_explicit_jacobian(m, n, d, alpha, seed, eta):
    p = make_problem(ProblemSpec(m=m, n=n, d=d, alpha=alpha, seed=seed))
    t = registry.create("dense", p, step_size=eta)
    W = p.W0.astype(np.float64).copy()
    a = p.a.astype(np.float64)
    kappa = 1.0  # largest Gram condition number so far
    for _ in range(3):
        f, fired, G, W_next = explicit_iteration(W, p.X, p.y, a, p.b, eta)
        # ties at the threshold or an ill-conditioned Gram make the step ill-posed
        Z = W @ p.X.T
        assume(np.abs(Z - p.b).min() > 1e-9)
        lam = np.linalg.eigvalsh(G)
        kept = lam[lam > 1e-12 * max(lam.max(), 1e-300)]
        assume(kept.size == 0 or kept.max() / kept.min() < 1e6)
        # Two backward-stable solves (pinv here, the library's solve there) of a system
        # with condition kappa differ by up to ~n kappa u relative to the solution, and
        # the weights and predictions inherit that normwise: the bound scales with the
        # largest entry, not with each one (at kappa = 3e5 an entry of 0.06 beside
        # entries of 40 differed by 1.4e-9 relative, inside this bound).
        W_tol = 8 * n * kappa * EPS * max(np.abs(W).max(), 1.0)
        np.testing.assert_allclose(t.weights(), W, rtol=1e-9, atol=max(W_tol, 1e-12))
        indptr, indices = t.active_sets()
        for i in range(n):
            assert indices[indptr[i] : indptr[i + 1]].tolist() == np.flatnonzero(fired[:, i]).tolist()
        f_tol = 8 * n * kappa * EPS * max(np.abs(f).max(), 1.0)
        np.testing.assert_allclose(t.predict(), f, rtol=1e-9, atol=max(f_tol, 1e-12))
        np.testing.assert_allclose(t.gram(), G, rtol=1e-10, atol=1e-14)
        t.step()
        kappa = max(kappa, kept.max() / kept.min() if kept.size else 1.0)
        W = W_next


def test_dense_block_size_does_not_change_results():
    from sublin_bench.impls.dense import DenseTrainer

    p = make_problem(ProblemSpec(m=5000, n=10, d=7, alpha=0.24, seed=3))
    one, many = DenseTrainer(p, block=5000), DenseTrainer(p, block=257)
    for _ in range(3):
        i1, i2 = one.step(), many.step()
        assert (i1.flips, i1.moved) == (i2.flips, i2.moved)
    np.testing.assert_allclose(one.weights(), many.weights(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(one.predict(), many.predict(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("alpha", [0.24, 0.5])
def test_lazy_regime_converges(alpha):
    t = registry.create("dense", make_problem(ProblemSpec(m=2**14, n=16, d=16, alpha=alpha)))
    infos = t.run(6)
    assert infos[0].residual_norm > 1
    assert np.linalg.norm(t.predict() - t.problem.y) < 1e-8 * infos[0].residual_norm
