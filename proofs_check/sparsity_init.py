"""Check 1: sparsity at initialisation."""

from __future__ import annotations

import numpy as np
from scipy import stats

from .common import FAILS, HOLDS, QUICK, CheckResult, fit_exponent, trajectory_for
from sublin_bench.scaling import expected_fired

STATEMENT = (
    "At initialisation each input fires |S_i(0)| ~ Binomial(m, Q(b)) neurons, about m Q(b) "
    "and at most m^(1-alpha)."
)
SOURCE = "arXiv 2208.04508, sparsity lemma for the shifted ReLU at initialisation (b = sqrt(2 alpha ln m))"
COVERAGE = 0.999  # two-sided binomial interval per count


def verdict(counts_by_m: dict, alpha: float, n_inputs: int) -> tuple[str, float, str, dict]:
    """Verdict from the per-input counts at every m (pure: tested with planted counts).

    Holds when, at every m, the total count over the inputs lies in its two-sided
    ``COVERAGE`` binomial interval (``Binomial(n m, Q(b))``: each count is exactly
    ``Binomial(m, Q(b))`` at initialisation) and no count exceeds ``m^(1-alpha)``.
    Single counts outside their own interval are reported, not judged: the inputs share
    W and the widths are nested, so they are not independent tests.
    """
    outside, total, over_cap, worst, worst_z = 0, 0, 0, 0.0, 0.0
    sums_ok = True
    rows = {}
    for m, counts in counts_by_m.items():
        q = expected_fired(m, alpha) / m
        counts = np.asarray(counts)
        lo, hi = stats.binom.interval(COVERAGE, m, q)
        outside += int(((counts < lo) | (counts > hi)).sum())
        total += counts.size
        slo, shi = stats.binom.interval(COVERAGE, m * counts.size, q)
        sums_ok &= bool(slo <= counts.sum() <= shi)
        sd = np.sqrt(m * counts.size * q * (1 - q))
        worst_z = max(worst_z, abs(counts.sum() - m * counts.size * q) / sd if sd > 0 else 0.0)
        cap = m ** (1 - alpha)
        over_cap += int((counts > cap).sum())
        worst = max(worst, float(counts.max() / cap))
        rows[m] = {"mean": float(counts.mean()), "expected": m * q, "interval": (lo, hi), "cap": cap}
    ok = over_cap == 0 and sums_ok
    detail = (
        f"total counts within their {COVERAGE:.1%} binomial intervals at every m: {sums_ok} "
        f"(largest deviation {worst_z:.2f} sd); {over_cap} counts above m^(1-alpha), the largest "
        f"{worst:.3f} of it; {outside} of {total} single counts outside their own interval "
        f"({(1 - COVERAGE) * total:.2f} expected if independent)"
    )
    return (HOLDS if ok else FAILS), 1.0 - worst, detail, rows


def check(impl: str = "band", alpha: float = 0.24, sizes=QUICK) -> CheckResult:
    counts = {m: trajectory_for(impl, m, sizes, alpha).fired[0] for m in sizes.ms}
    v, margin, detail, rows = verdict(counts, alpha, sizes.n)
    slope, lo, hi = fit_exponent(list(counts), [np.maximum(c, 1) for c in counts.values()])
    from sublin_bench.scaling import fired_count_slope

    pred = fired_count_slope(sizes.ms, alpha)
    return CheckResult(
        key="sparsity_init", statement=STATEMENT, source=SOURCE,
        parameters={"impl": impl, "alpha": alpha, "ms": list(sizes.ms), "n": sizes.n, "d": sizes.d},
        measured={"mean_count": {m: r["mean"] for m, r in rows.items()}, "exponent": slope,
                  "exponent_interval": (lo, hi)},
        bound={"expected_count": {m: r["expected"] for m, r in rows.items()},
               "cap": {m: r["cap"] for m, r in rows.items()}, "expected_exponent": pred, "nominal": 1 - alpha},
        verdict=v, margin=margin, detail=detail + f"; fitted exponent {slope:.3f} [{lo:.3f}, {hi:.3f}] vs {pred:.3f}",
        series={"ms": list(counts), "mean": [rows[m]["mean"] for m in counts],
                "expected": [rows[m]["expected"] for m in counts], "cap": [rows[m]["cap"] for m in counts]},
    )
