"""Fitting the cost exponent in m, and the verdict.

Per-iteration time ``T(m) ≈ C m^s``: the slope ``s`` of ``log T`` on ``log m`` is the cost
exponent. Dense training has ``s ≈ 1``; the tree-indexed method should follow the fired
count ``m Q(b(m))``, whose slope over the same grid is a little below ``1 - alpha``.

Which points are fitted
-----------------------
Only the asymptotic part of the grid: the points with ``log m`` in the upper half of the
grid's ``log m`` range (``m >= sqrt(m_min m_max)``), and at least three points. At small m
fixed costs (the ``n^3`` solve, interpreter overhead) flatten every curve; the upper half
is where the leading term shows. The chosen range is reported with every fit.

Intervals
---------
* ``t``: the 95% t-interval of the least-squares slope fitted to the per-m medians;
* ``bootstrap``: the 2.5% and 97.5% quantiles of the slope over 2000 resamples that draw,
  at every m, the repeats with replacement and refit the medians (percentile bootstrap).

The verdict uses the wider of the two: ``linear`` when its lower end is at least
``LINEAR_FROM`` (0.85), ``sublinear`` when its upper end is below ``SUBLINEAR_BELOW``
(0.9), ``inconclusive`` otherwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats
from scipy.special import ndtr

from .problem import threshold_for

LINEAR_FROM = 0.85
SUBLINEAR_BELOW = 0.9
BOOTSTRAP = 2000

__all__ = ["SlopeFit", "fit_slope", "fit_range", "fired_count_slope", "expected_fired", "verdict"]


@dataclass(frozen=True)
class SlopeFit:
    """A fitted exponent with its intervals."""

    slope: float
    intercept: float
    t_low: float
    t_high: float
    boot_low: float
    boot_high: float
    m_low: int
    m_high: int
    points: int

    @property
    def low(self) -> float:
        return min(self.t_low, self.boot_low)

    @property
    def high(self) -> float:
        return max(self.t_high, self.boot_high)

    def as_dict(self) -> dict:
        return asdict(self)


def fit_range(ms) -> list[int]:
    """The asymptotic part of a grid: ``m >= sqrt(m_min m_max)``, at least 3 points."""
    ms = sorted(set(int(m) for m in ms))
    if len(ms) < 3:
        return ms
    mid = math.sqrt(ms[0] * ms[-1])
    upper = [m for m in ms if m >= mid * (1 - 1e-12)]
    return upper if len(upper) >= 3 else ms[-3:]


def fit_slope(samples: dict[int, list[float]], *, rng: np.random.Generator | int | None = 0, only=None) -> SlopeFit:
    """Fit ``log(time) = s log(m) + c`` to the medians of ``samples`` (m -> repeats).

    Parameters
    ----------
    samples : dict
        Per-iteration times (seconds, > 0) for each m.
    rng : Generator or seed
        For the bootstrap (seeded by default so reports are reproducible).
    only : iterable of int, optional
        The m values to fit; defaults to :func:`fit_range` of the keys.

    Raises
    ------
    ValueError
        With fewer than two usable m values, or non-positive times.

    Examples
    --------
    >>> fit = fit_slope({m: [2e-9 * m] * 3 for m in (2**10, 2**12, 2**14, 2**16)})
    >>> round(fit.slope, 6)
    1.0
    """
    use = sorted(fit_range(samples) if only is None else only)
    use = [m for m in use if len(samples.get(m, ())) > 0]
    if len(use) < 2:
        raise ValueError(f"need timings at two or more widths to fit a slope, got {len(use)}")
    arrays = [np.asarray(samples[m], dtype=float) for m in use]
    if any(np.any(~np.isfinite(a)) or np.any(a <= 0) for a in arrays):
        raise ValueError("timings must be finite and positive")
    x = np.log(np.asarray(use, dtype=float))
    y = np.log([np.median(a) for a in arrays])
    k = len(use)
    res = stats.linregress(x, y)
    if k > 2:
        t = stats.t.ppf(0.975, k - 2)
        t_low, t_high = res.slope - t * res.stderr, res.slope + t * res.stderr
    else:
        t_low, t_high = -math.inf, math.inf
    gen = np.random.default_rng(rng)
    xc = x - x.mean()
    sxx = float((xc**2).sum())
    # resample the repeats at every m (stratified), take medians, refit: vectorised
    yb = np.empty((BOOTSTRAP, k))
    for j, a in enumerate(arrays):
        yb[:, j] = np.log(np.median(a[gen.integers(0, a.size, (BOOTSTRAP, a.size))], axis=1))
    boots = ((yb - yb.mean(axis=1, keepdims=True)) @ xc) / sxx
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return SlopeFit(
        slope=float(res.slope), intercept=float(res.intercept),
        t_low=float(t_low), t_high=float(t_high), boot_low=float(lo), boot_high=float(hi),
        m_low=int(use[0]), m_high=int(use[-1]), points=k,
    )


def expected_fired(m: int, alpha: float) -> float:
    """``m Q(b)`` with ``b = sqrt(2 alpha ln m)``: expected fired neurons per input."""
    return m * float(ndtr(-threshold_for(m, alpha)))


def fired_count_slope(ms, alpha: float) -> float:
    """Least-squares slope of ``log(m Q(b(m)))`` on ``log m`` over ``ms``."""
    ms = sorted(set(int(m) for m in ms))
    if len(ms) < 2:
        return float("nan")
    x = np.log(ms)
    y = np.log([expected_fired(m, alpha) for m in ms])
    return float(np.polyfit(x, y, 1)[0])


def verdict(fit: SlopeFit) -> str:
    """``linear``, ``sublinear`` or ``inconclusive`` (see the module docstring)."""
    if fit.low >= LINEAR_FROM:
        return "linear"
    if fit.high < SUBLINEAR_BELOW:
        return "sublinear"
    return "inconclusive"
