"""Check 2: sparsity during training."""

from __future__ import annotations

from .common import FAILS, HOLDS, QUICK, CheckResult, trajectory_for
from sublin_bench.scaling import expected_fired

STATEMENT = "Throughout training, max_t max_i |S_i(t)| stays within a constant factor of m Q(b)."
SOURCE = "arXiv 2208.04508, sparsity preserved along the Gauss-Newton iterations"
FACTOR = 2.0  # the constant we hold the statement to


def verdict(max_count: float, expected: float) -> tuple[str, float, str]:
    ratio = max_count / expected if expected > 0 else float("inf")
    ok = ratio <= FACTOR
    return (HOLDS if ok else FAILS), FACTOR - ratio, f"max |S_i(t)| is {ratio:.3f} m Q(b) (allowed {FACTOR:g})"


def check(impl: str = "band", alpha: float = 0.24, sizes=QUICK) -> CheckResult:
    m = sizes.m
    traj = trajectory_for(impl, m, sizes, alpha)
    exp = expected_fired(m, alpha)
    mx = float(traj.fired.max())
    v, margin, detail = verdict(mx, exp)
    return CheckResult(
        key="sparsity_training", statement=STATEMENT, source=SOURCE,
        parameters={"impl": impl, "alpha": alpha, "m": m, "n": sizes.n, "d": sizes.d, "steps": sizes.steps},
        measured={"max_fired": mx, "max_fired_per_step": traj.fired.max(axis=1).tolist()},
        bound={"m_Q_b": exp, "factor": FACTOR},
        verdict=v, margin=margin, detail=detail,
        series={"max_per_step": traj.fired.max(axis=1).tolist(), "mean_per_step": traj.fired.mean(axis=1).tolist()},
    )
