"""proofs_check: every check runs at small size, and its verdict logic fails on planted
violations."""

import numpy as np
import pytest
from click.testing import CliRunner

from sublin_bench import proofs_check
from sublin_bench.impls.dense import DenseTrainer
from sublin_bench.proofs_check import (
    contraction, cost_scaling, flips, lambda_bounds, movement, ntk_eigen, sparsity_init, sparsity_training,
)
from sublin_bench.proofs_check.common import FAILS, HOLDS, NA, Sizes, trajectory
from sublin_bench import registry
from sublin_bench.cli import cli

TINY = Sizes(ms=(2**9, 2**10, 2**11, 2**12), n=8, d=8, steps=4)


@pytest.fixture(autouse=True)
def _fresh_cache():
    trajectory.cache_clear()
    yield
    trajectory.cache_clear()


@pytest.mark.parametrize("mod", proofs_check.CHECKS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_check_runs_and_reports(mod):
    r = mod.check(impl="band", alpha=0.24, sizes=TINY)
    assert r.verdict in (HOLDS, FAILS, NA)
    assert r.statement and r.source and r.detail and r.parameters
    assert r.as_dict()["key"] == r.key


def test_shifted_ntk_closed_form_matches_monte_carlo():
    rng = np.random.default_rng(0)
    d, b, N = 5, 0.8, 400_000
    X = rng.standard_normal((6, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    X[1] = X[0]  # rho = 1
    X[2] = -X[0]  # rho = -1
    w = rng.standard_normal((N, d))
    fire = (w @ X.T) > b
    mc = (fire[:, :, None] & fire[:, None, :]).mean(axis=0)
    exact = ntk_eigen.both_exceed(b, np.clip(X @ X.T, -1, 1))
    se = np.sqrt(exact * (1 - exact) / N)
    assert np.all(np.abs(mc - exact) <= 5 * se + 1e-12)
    np.testing.assert_allclose(ntk_eigen.shifted_ntk(X, b), (X @ X.T) * exact)


def test_both_exceed_special_cases():
    from scipy.special import ndtr

    b = 1.3
    assert ntk_eigen.both_exceed(b, 0.0) == pytest.approx(ndtr(-b) ** 2)
    assert ntk_eigen.both_exceed(b, 1.0) == pytest.approx(ndtr(-b))
    assert ntk_eigen.both_exceed(b, -1.0) == pytest.approx(0.0, abs=1e-15)


# -- planted violations ------------------------------------------------------------------


def test_sparsity_init_fails_on_planted_counts():
    from sublin_bench.scaling import expected_fired

    ok = {m: np.full(8, expected_fired(m, 0.3)).round() for m in (1024, 4096)}
    assert sparsity_init.verdict(ok, 0.3, 8)[0] == HOLDS
    too_many = {m: 1.5 * c for m, c in ok.items()}
    assert sparsity_init.verdict(too_many, 0.3, 8)[0] == FAILS
    over_cap = {1024: np.array([1024 ** 0.7 + 1] + [expected_fired(1024, 0.3)] * 7)}
    assert sparsity_init.verdict(over_cap, 0.3, 8)[0] == FAILS


class _FiresTooOften(DenseTrainer):
    """Reports the sets of a lower threshold."""

    def __init__(self, problem, **kw):
        super().__init__(problem, **kw)
        self._bt = self._bt * 0.8
        self._f, self._C = self._refresh(None, None)


def test_sparsity_init_fails_for_a_trainer_that_fires_too_often():
    registry.register("planted", _FiresTooOften)
    assert sparsity_init.check(impl="planted", alpha=0.3, sizes=TINY).verdict == FAILS
    assert sparsity_init.check(impl="dense", alpha=0.3, sizes=TINY).verdict == HOLDS


def test_sparsity_training_fails_when_sets_grow():
    assert sparsity_training.verdict(10.0, 9.0)[0] == HOLDS
    assert sparsity_training.verdict(30.0, 9.0)[0] == FAILS


def test_flips_fail_when_most_activations_flip():
    fired = np.array([[10, 10], [10, 10], [10, 10], [10, 10]])
    residual = np.array([4.0, 2.0, 1.0, 0.5])
    few = np.array([[2, 1], [1, 0], [0, 0]])
    many = np.array([[9, 9], [8, 8], [9, 9]])
    assert flips.verdict(few, fired, residual)[0] == HOLDS
    assert flips.verdict(many, fired, residual)[0] == FAILS


class _MovesTooFar(DenseTrainer):
    """Moves every fired neuron by a fixed distance each step, whatever m is."""

    def _update(self, g):
        res = super()._update(g)
        moved = self._A.any(axis=1)
        self._W[moved] += 0.5
        self._f, self._C = self._refresh(None, None)
        return res


def test_movement_fails_for_a_trainer_that_moves_too_far():
    registry.register("planted", _MovesTooFar)
    r = movement.check(impl="planted", alpha=0.24, sizes=TINY)
    assert r.verdict == FAILS, r.detail


def test_movement_verdict():
    assert movement.verdict(-0.27, -0.35, -0.2, 0.24)[0] == HOLDS
    assert movement.verdict(-0.4, -0.5, -0.3, 0.24)[0] == HOLDS  # shrinks faster than the bound
    assert movement.verdict(0.0, -0.02, 0.02, 0.24)[0] == FAILS
    assert movement.verdict(0.02, -0.05, 0.08, 0.5)[0] == HOLDS
    assert movement.verdict(0.3, 0.2, 0.4, 0.5)[0] == FAILS


class _TinyEigenvalue(DenseTrainer):
    """A Gram matrix with a planted tiny eigenvalue."""

    def gram(self):
        G = super().gram()
        lam, V = np.linalg.eigh(G)
        lam[0] = 1e-9 * lam[-1]
        return (V * lam) @ V.T


def test_ntk_eigen_fails_on_a_planted_tiny_eigenvalue():
    assert ntk_eigen.verdict(1.0, 0.9, np.array([0.9, 0.8, 0.7]))[0] == HOLDS
    assert ntk_eigen.verdict(1.0, 0.7, np.array([0.7]))[0] == FAILS
    assert ntk_eigen.verdict(1.0, 0.9, np.array([0.9, 0.3]))[0] == FAILS
    registry.register("planted", _TinyEigenvalue)
    assert ntk_eigen.check(impl="planted", alpha=0.24, sizes=TINY).verdict == FAILS


def test_lambda_bounds_verdict():
    import math

    b, delta, n = 1.0, 0.5, 4
    up = math.exp(-0.5)
    assert lambda_bounds.verdict(up / 2, b, delta, n)[0] == HOLDS
    assert lambda_bounds.verdict(2 * up, b, delta, n)[0] == FAILS
    assert lambda_bounds.verdict(1e-9, b, delta, n)[0] == FAILS
    assert lambda_bounds.verdict(0.1, b, float("nan"), 1)[0] == NA


def test_contraction_fails_for_a_slow_step():
    assert contraction.verdict(np.array([1.0, 0.4, 0.1, 1e-12, 1e-15]))[0] == HOLDS
    assert contraction.verdict(np.array([1.0, 0.9, 0.8]))[0] == FAILS
    registry.register("planted", type("Slow", (DenseTrainer,), {}))
    # a small step size contracts by only 1 - eta per step
    from sublin_bench.proofs_check.common import record
    from sublin_bench import ProblemSpec, make_problem

    t = registry.create("planted", make_problem(ProblemSpec(m=2048, n=8, d=8, alpha=0.24)), step_size=0.2)
    assert contraction.verdict(record(t, 4).residual)[0] == FAILS


def test_cost_scaling_verdict():
    assert cost_scaling.verdict(0.7, 0.65, 0.75, 0.24, 0.72)[0] == HOLDS
    assert cost_scaling.verdict(1.0, 0.98, 1.02, 0.24, 0.72)[0] == FAILS


def test_cost_scaling_fails_for_dense():
    """dense touches every neuron: its counted work is linear in m."""
    r = cost_scaling.check(impl="dense", alpha=0.5, sizes=TINY)
    assert r.verdict == FAILS and r.measured["exponent"] > 0.95


def test_proofs_cli_quick(tmp_path):
    res = CliRunner().invoke(cli, ["proofs", "--quick", "--alpha", "0.24", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "proofs.json").exists() and (tmp_path / "proofs_alpha0.24.png").exists()
    assert "sparsity_init" in res.output and "cost_scaling" in res.output


def test_proofs_cli_bad_input(tmp_path):
    res = CliRunner().invoke(cli, ["proofs", "--alpha", "2", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "alpha must lie in [0, 1)" in res.output
    res = CliRunner().invoke(cli, ["proofs", "--impl", "nope", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "unknown implementation" in res.output
