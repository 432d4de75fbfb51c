"""Check 7: contraction of the residual per Gauss-Newton step."""

from __future__ import annotations

import numpy as np

from .common import FAILS, HOLDS, NA, QUICK, CheckResult, converged, trajectory_for

STATEMENT = "Every Gauss-Newton step contracts the residual: ||f_(t+1) - y|| / ||f_t - y|| <= 1/2."
SOURCE = "arXiv 2208.04508 and arXiv 2006.11648, convergence theorem (linear rate 1/2 or better)"


def verdict(residual: np.ndarray) -> tuple[str, float, str, list]:
    stop = min(converged(residual) + 1, residual.size)
    ratios = (residual[1:stop] / residual[: stop - 1]).tolist() if stop > 1 else []
    if not ratios:
        return NA, None, "the residual is at rounding level from the start", ratios
    worst = max(ratios)
    ok = worst <= 0.5
    return (HOLDS if ok else FAILS), 0.5 - worst, (
        f"largest ratio {worst:.3e} over {len(ratios)} steps before the residual reached rounding level"), ratios


def check(impl: str = "band", alpha: float = 0.24, sizes=QUICK) -> CheckResult:
    traj = trajectory_for(impl, sizes.m, sizes, alpha)
    v, margin, detail, ratios = verdict(traj.residual)
    return CheckResult(
        key="contraction", statement=STATEMENT, source=SOURCE,
        parameters={"impl": impl, "alpha": alpha, "m": sizes.m, "n": sizes.n, "steps": sizes.steps},
        measured={"ratios": ratios, "residual": traj.residual.tolist()}, bound={"ratio": 0.5},
        verdict=v, margin=margin, detail=detail, series={"residual": traj.residual.tolist()},
    )
