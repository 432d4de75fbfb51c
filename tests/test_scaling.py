"""The exponent fit on synthetic timings with known slopes and noise."""

import numpy as np
import pytest

from sublin_bench.scaling import fired_count_slope, fit_range, fit_slope, verdict

MS = [2**k for k in range(12, 21)]


def synthetic(slope, noise, repeats=5, seed=0, floor=0.0):
    rng = np.random.default_rng(seed)
    return {m: list((floor + 1e-8 * m**slope) * np.exp(rng.normal(0, noise, repeats))) for m in MS}


def test_fit_range_is_the_upper_half_in_log_m():
    assert fit_range(MS) == [2**k for k in range(16, 21)]
    assert fit_range([8, 16]) == [8, 16]
    assert fit_range([2, 4, 8, 1024]) == [4, 8, 1024][-3:]


def test_exact_power_law_recovered():
    fit = fit_slope(synthetic(0.7, 0.0))
    assert fit.slope == pytest.approx(0.7, abs=1e-9)
    assert fit.points == 5 and fit.m_low == 2**16 and fit.m_high == 2**20


@pytest.mark.parametrize("true", [0.45, 0.76, 1.0])
def test_intervals_cover_the_truth_at_the_nominal_rate(true):
    hits_t = hits_boot = 0
    trials = 200
    for seed in range(trials):
        fit = fit_slope(synthetic(true, 0.15, seed=seed), rng=seed)
        hits_t += fit.t_low <= true <= fit.t_high
        hits_boot += fit.boot_low <= true <= fit.boot_high
    # 95% intervals: over 200 trials expect ~190; allow binomial noise and the
    # bootstrap's known slight undercoverage at 5 repeats
    assert hits_t >= 0.9 * trials
    assert hits_boot >= 0.8 * trials


def test_verdicts():
    assert verdict(fit_slope(synthetic(1.0, 0.05))) == "linear"
    assert verdict(fit_slope(synthetic(0.5, 0.05))) == "sublinear"
    assert verdict(fit_slope(synthetic(0.88, 0.6))) == "inconclusive"


def test_fixed_cost_flattens_the_measured_slope():
    """A constant per-step cost (the n^3 solve) pulls the slope below the exponent of the
    m-dependent part: the reason the report also shows the counted-work slope."""
    fit = fit_slope(synthetic(0.5, 0.0, floor=1e-3))
    assert fit.slope < 0.45


def test_fired_count_slope_is_below_one_minus_alpha():
    for alpha in (0.24, 0.5):
        s = fired_count_slope(fit_range(MS), alpha)
        assert 1 - alpha - 0.1 < s < 1 - alpha


@pytest.mark.parametrize("bad", [{1024: [1.0]}, {1024: [1.0], 2048: [0.0]}, {1024: [1.0], 2048: [float("nan")]}])
def test_bad_timings_are_refused(bad):
    with pytest.raises(ValueError):
        fit_slope(bad)
