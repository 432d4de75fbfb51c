"""Check 4: the weights move little (lazy regime)."""

from __future__ import annotations

import numpy as np

from .common import FAILS, HOLDS, QUICK, CheckResult, fit_exponent, trajectory_for

STATEMENT = (
    "max_r ||w_r(t) - w_r(0)|| over training grows no faster than m^(alpha - 1/2): it shrinks "
    "with m for alpha < 1/2 (the bound does not require shrinking for alpha >= 1/2)."
)
SOURCE = "arXiv 2208.04508 and arXiv 2006.11648, lazy-regime movement bound"
TOLERANCE = 0.1  # how far the interval may lie above alpha - 1/2


def verdict(slope: float, lo: float, hi: float, alpha: float) -> tuple[str, float, str]:
    """The lazy-regime analysis bounds the movement by ``C m^(alpha - 1/2)``: a growth
    rate, not an exact law. Holds unless the fitted exponent is clearly above it (the
    interval's lower end more than ``TOLERANCE`` above ``alpha - 1/2``)."""
    pred = alpha - 0.5
    excess = lo - pred
    ok = excess <= TOLERANCE
    trend = "shrinks with m" if hi < 0 else ("grows with m" if lo > 0 else "no clear trend in m")
    detail = (f"fitted exponent {slope:.3f} [{lo:.3f}, {hi:.3f}] against the bound's {pred:+.3f} "
              f"(may exceed it by up to {TOLERANCE}); {trend}")
    return (HOLDS if ok else FAILS), TOLERANCE - excess, detail


def check(impl: str = "band", alpha: float = 0.24, sizes=QUICK) -> CheckResult:
    moves = {m: float(trajectory_for(impl, m, sizes, alpha).movement.max()) for m in sizes.ms}
    slope, lo, hi = fit_exponent(list(moves), [np.array([max(v, 1e-300)]) for v in moves.values()])
    v, margin, detail = verdict(slope, lo, hi, alpha)
    return CheckResult(
        key="movement", statement=STATEMENT, source=SOURCE,
        parameters={"impl": impl, "alpha": alpha, "ms": list(sizes.ms), "steps": sizes.steps},
        measured={"max_movement": moves, "exponent": slope, "exponent_interval": (lo, hi)},
        bound={"predicted_exponent": alpha - 0.5}, verdict=v, margin=margin, detail=detail,
        series={"ms": list(moves), "movement": list(moves.values())},
    )
