"""The shared Gauss-Newton solve: minimum-norm least squares on the fired block.

``solve_gram`` must give the pseudo-inverse solution, full rank or not. Tolerances: a
backward-stable solve of a system with condition number ``kappa`` has relative forward error about
``k eps kappa``; the tests allow ``100 k eps kappa`` (the constructions keep ``kappa``
at most 16, so this is ~1e-11 relative: far below any real mistake, such as a missed or
spurious eigenvalue, which changes ``g`` by O(1)).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sublin_bench.linalg import CHOLESKY_MAX_CONDITION, _eigh_kernel, solve_gram

EPS = np.finfo(np.float64).eps


def _psd(n: int, rank: int, seed: int):
    """``G = Q diag(s^2) Q^T`` with orthonormal ``Q`` (n x rank) and ``s`` in [0.5, 2]:
    kept eigenvalues in [0.25, 4], the others zero up to rounding."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, max(rank, 1))))
    Q = Q[:, :rank]
    s = rng.uniform(0.5, 2.0, rank)
    G = (Q * s**2) @ Q.T
    return (G + G.T) / 2, Q, rng.standard_normal(n)


@given(n=st.integers(1, 40), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_solution_is_the_pseudo_inverse_solution(n, data, seed):
    rank = data.draw(st.integers(0, n), label="rank")
    G, Q, r = _psd(n, rank, seed)
    sol = solve_gram(G, r, np.ones(n, dtype=bool))
    assert sol.rank == rank
    expect = Q @ ((Q.T @ r) / np.diag(Q.T @ G @ Q)) if rank else np.zeros(n)
    tol = 100 * n * EPS * 16 * max(np.linalg.norm(expect), 1.0)
    assert np.linalg.norm(sol.g - expect) <= tol
    if rank:
        lam = np.linalg.eigvalsh(Q.T @ G @ Q)
        assert sol.condition == pytest.approx(lam[-1] / lam[0], rel=1e-8)
    else:
        assert sol.condition == 1.0 and np.array_equal(sol.g, np.zeros(n))


@given(n=st.integers(2, 30), seed=st.integers(0, 2**32 - 1))
def test_inputs_that_fire_nothing_get_exactly_zero(n, seed):
    rng = np.random.default_rng(seed)
    G, _, r = _psd(n, n, seed)
    fired = rng.random(n) < 0.6
    G[~fired, :] = 0.0
    G[:, ~fired] = 0.0
    sol = solve_gram(G, r, fired)
    assert np.all(sol.g[~fired] == 0.0)
    assert sol.rank == int(fired.sum())
    if fired.any():
        idx = np.flatnonzero(fired)
        expect = np.linalg.solve(G[np.ix_(idx, idx)], r[idx])
        assert np.linalg.norm(sol.g[idx] - expect) <= 100 * n * EPS * 16 * max(np.linalg.norm(expect), 1.0)


def test_rank_deficient_solution_has_no_null_space_component():
    G, Q, r = _psd(12, 7, seed=3)
    g = solve_gram(G, r).g
    null = np.linalg.svd(Q, full_matrices=True)[0][:, 7:]
    assert np.abs(null.T @ g).max() < 1e-12
    np.testing.assert_allclose(g, np.linalg.pinv(G, rtol=12 * EPS, hermitian=True) @ r, atol=1e-12)


def test_bad_matrices_raise_a_linalg_error():
    with pytest.raises(np.linalg.LinAlgError):
        solve_gram(np.array([[np.nan, 0.0], [0.0, 1.0]]), np.ones(2), np.ones(2, dtype=bool))


def _spd(k: int, kappa: float, seed: int):
    """A k x k symmetric positive definite matrix with eigenvalues spread log-uniformly
    from 1 to exactly ``kappa``, and a right-hand side."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((k, k)))
    lam = np.geomspace(1.0, kappa, k) if k > 1 else np.array([1.0])
    G = (Q * lam) @ Q.T
    return (G + G.T) / 2, rng.standard_normal(k)


@given(k=st.integers(1, 40), log_kappa=st.floats(0.0, 9.0), seed=st.integers(0, 2**32 - 1))
def test_cholesky_path_only_where_its_condition_bound_holds(k, log_kappa, seed):
    """The fast path is taken exactly when it may be: never above CHOLESKY_MAX_CONDITION,
    always at or below ``CHOLESKY_MAX_CONDITION / k^1.5`` (its bound is at most
    ``k^1.5 kappa``), and either path gives the pseudo-inverse solution."""
    G, r = _spd(k, 10.0**log_kappa, seed)
    sol = solve_gram(G, r, np.ones(k, dtype=bool))
    lam = np.linalg.eigvalsh(G)
    kappa = lam[-1] / lam[0]
    if sol.method == "cholesky":
        assert kappa <= CHOLESKY_MAX_CONDITION
        assert sol.rank == k
    if kappa <= CHOLESKY_MAX_CONDITION / k**1.5 * 0.99:
        assert sol.method == "cholesky"
    expect = np.linalg.solve(G, r)
    assert np.linalg.norm(sol.g - expect) <= 100 * k * EPS * kappa * max(np.linalg.norm(expect), 1.0)


@given(k=st.integers(1, 40), frac=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_spectrum_after_a_cholesky_solve_is_the_eigh_spectrum(k, frac, seed):
    # condition numbers up to 0.99 CHOLESKY_MAX_CONDITION / k^1.5, where Cholesky is certain
    G, r = _spd(k, (0.99 * CHOLESKY_MAX_CONDITION / k**1.5) ** frac, seed)
    fast = solve_gram(G, r, np.ones(k, dtype=bool))
    assert fast.method == "cholesky"
    _, rank, eig_max, eig_min_kept, cutoff = _eigh_kernel(G, r, np.ones(k, dtype=bool))
    assert fast.rank == rank == k
    assert fast.eig_max == pytest.approx(eig_max, rel=1e-12)
    assert fast.eig_min_kept == pytest.approx(eig_min_kept, rel=1e-10)
    assert fast.cutoff == pytest.approx(cutoff, rel=1e-12)


def test_ill_conditioned_and_indefinite_blocks_take_the_eigh_path():
    G, r = _spd(8, 1e7, seed=0)
    assert solve_gram(G, r).method == "eigh"
    G_rank_deficient, _, r = _psd(8, 5, seed=0)
    assert solve_gram(G_rank_deficient, r, np.ones(8, dtype=bool)).method == "eigh"
    indefinite = np.diag([1.0, -1e-3, 2.0])
    sol = solve_gram(indefinite, np.ones(3), np.ones(3, dtype=bool))
    assert sol.method == "eigh" and sol.rank == 2 and sol.g[1] == 0.0


def test_the_spectrum_is_not_computed_until_read():
    """The step's timed region pays for the solve, not for the diagnostic spectrum."""
    G, r = _spd(16, 10.0, seed=1)
    sol = solve_gram(G, r)
    assert sol.method == "cholesky" and sol._spectrum is None
    assert sol.condition == pytest.approx(10.0, rel=1e-9)
    assert sol._spectrum is not None and sol._block is None


@pytest.mark.parametrize("n, rank, method", [(200, 200, "cholesky"), (300, 250, "eigh"), (130, 1, "eigh")])
def test_large_blocks_go_through_lapack_and_give_the_pseudo_inverse(n, rank, method):
    """Blocks above LAPACK_FROM rows take the LAPACK path; the answer is the same
    minimum-norm least-squares solution, and a rank-deficient block is detected."""
    from sublin_bench.linalg import LAPACK_FROM

    assert n > LAPACK_FROM
    G, Q, r = _psd(n, rank, seed=n + rank)
    sol = solve_gram(G, r)
    assert sol.method == method and sol.rank == rank
    want = np.linalg.pinv(G, rcond=1e-10, hermitian=True) @ r
    np.testing.assert_allclose(sol.g, want, rtol=0, atol=100 * n * EPS * 16 * np.abs(want).max())
    lam = np.linalg.eigvalsh(G)
    kept = lam[lam > n * EPS * lam[-1]]
    assert sol.condition == pytest.approx(kept[-1] / kept[0], rel=1e-8)
