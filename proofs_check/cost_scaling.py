"""Check 9: counted per-iteration work of a sublinear implementation against m^(1-alpha)."""

from __future__ import annotations

import numpy as np

from .common import FAILS, HOLDS, NA, QUICK, CheckResult, fit_exponent, trajectory_for
from sublin_bench.scaling import fired_count_slope

STATEMENT = "The per-iteration work of the index-based method grows like m^(1-alpha) (more precisely m Q(b)), not like m."
SOURCE = "arXiv 2208.04508, main theorem (cost m^(1-alpha) n d + n^3 per iteration)"
TOLERANCE = 0.1


def verdict(slope: float, lo: float, hi: float, alpha: float, fired_slope: float) -> tuple[str, float, str]:
    """Holds when the work exponent is at most ``1 - alpha + TOLERANCE`` with its interval
    below 1. Not applicable for ``alpha < TOLERANCE`` (``alpha = 0`` is the plain ReLU):
    the claimed exponent is then within the tolerance of 1, so the claim cannot be told
    apart from linear cost, and there is nothing sublinear to check."""
    if alpha < TOLERANCE:
        detail = (f"work exponent {slope:.3f} [{lo:.3f}, {hi:.3f}]; not applicable at alpha = {alpha:g}: "
                  f"the claimed exponent 1 - alpha = {1 - alpha:.3f} is within {TOLERANCE} of linear cost")
        return NA, None, detail
    cap = 1 - alpha + TOLERANCE
    ok = slope <= cap and hi < 1.0
    detail = (f"work exponent {slope:.3f} [{lo:.3f}, {hi:.3f}] against 1 - alpha = {1 - alpha:.3f} "
              f"(fired count {fired_slope:.3f}); allowed up to {cap:.3f} with the interval below 1")
    return (HOLDS if ok else FAILS), cap - slope, detail


def check(impl: str = "band", alpha: float = 0.24, sizes=QUICK) -> CheckResult:
    works = {m: trajectory_for(impl, m, sizes, alpha).work for m in sizes.ms}
    slope, lo, hi = fit_exponent(list(works), [np.maximum(w, 1.0) for w in works.values()])
    fs = fired_count_slope(sizes.ms, alpha)
    v, margin, detail = verdict(slope, lo, hi, alpha, fs)
    return CheckResult(
        key="cost_scaling", statement=STATEMENT, source=SOURCE,
        parameters={"impl": impl, "alpha": alpha, "ms": list(sizes.ms), "steps": sizes.steps},
        measured={"median_work_per_step": {m: float(np.median(w)) for m, w in works.items()},
                  "exponent": slope, "exponent_interval": (lo, hi)},
        bound={"nominal": 1 - alpha, "fired_count_slope": fs}, verdict=v, margin=margin, detail=detail,
        series={"ms": list(works), "work": [float(np.median(w)) for w in works.values()]},
    )
