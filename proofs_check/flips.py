"""Check 3: few activation flips per step."""

from __future__ import annotations

import numpy as np
from scipy import stats

from .common import FAILS, HOLDS, NA, QUICK, CheckResult, trajectory_for

STATEMENT = (
    "Each Gauss-Newton step flips few activations: sum_i |S_i(t+1) Δ S_i(t)| is a small fraction "
    "of the fired count, and the flip rate falls as the residual falls."
)
SOURCE = "arXiv 2208.04508 (few tree nodes change per iteration); arXiv 2110.04622 (few flips)"
FRACTION = 0.5  # flips below half the fired count at every step


def verdict(flips: np.ndarray, fired: np.ndarray, residual: np.ndarray) -> tuple[str, float, str, dict]:
    rate = flips.sum(axis=1) / np.maximum(fired[:-1].sum(axis=1), 1)
    worst = float(rate.max()) if rate.size else 0.0
    falls = True
    rho = float("nan")
    if rate.size >= 3 and np.ptp(residual[:-1]) > 0:
        rho = float(stats.spearmanr(residual[:-1], rate).statistic)
        falls = not (rho < 0)  # flips must not grow as the residual shrinks
    ok = worst < FRACTION and falls
    detail = (f"largest flip rate {worst:.4f} of the fired count (allowed < {FRACTION}); "
              f"rank correlation of flip rate with residual {rho:.2f}")
    return (HOLDS if ok else FAILS), FRACTION - worst, detail, {"rate": rate.tolist(), "spearman": rho}


def check(impl: str = "band", alpha: float = 0.24, sizes=QUICK) -> CheckResult:
    traj = trajectory_for(impl, sizes.m, sizes, alpha)
    v, margin, detail, meas = verdict(traj.flips, traj.fired, traj.residual)
    if traj.fired[0].sum() == 0:
        v, detail = NA, "no neuron fires at this size"
    return CheckResult(
        key="flips", statement=STATEMENT, source=SOURCE,
        parameters={"impl": impl, "alpha": alpha, "m": sizes.m, "n": sizes.n, "steps": sizes.steps},
        measured=meas | {"flips_per_step": traj.flips.sum(axis=1).tolist()},
        bound={"max_fraction": FRACTION}, verdict=v, margin=margin, detail=detail,
        series={"rate": meas["rate"], "residual": traj.residual.tolist()},
    )
