"""Check 6: the bounds on lambda."""

from __future__ import annotations

import math

import numpy as np

from .common import FAILS, HOLDS, NA, QUICK, CheckResult
from .ntk_eigen import shifted_ntk
from sublin_bench import ProblemSpec, make_problem
from sublin_bench.data import separation

STATEMENT = "exp(-b^2/2) delta / (100 n^2) <= lambda <= exp(-b^2/2), delta the smallest distance between two inputs."
SOURCE = "arXiv 2208.04508, bounds on the least eigenvalue of the shifted NTK"


def verdict(lam: float, b: float, delta: float, n: int) -> tuple[str, float, str, float, float]:
    upper = math.exp(-b * b / 2)
    if not np.isfinite(delta):
        return NA, None, "needs at least two inputs", float("nan"), upper
    lower = upper * delta / (100 * n * n)
    ok = lower <= lam <= upper
    margin = min(math.log(lam / lower), math.log(upper / lam)) if lam > 0 else -math.inf
    detail = f"lambda = {lam:.3e} in [{lower:.3e}, {upper:.3e}]? log-margin {margin:.2f}"
    return (HOLDS if ok else FAILS), margin, detail, lower, upper


def check(impl: str = "band", alpha: float = 0.24, sizes=QUICK) -> CheckResult:
    p = make_problem(ProblemSpec(m=sizes.m, n=sizes.n, d=sizes.d, alpha=alpha, seed=sizes.seed, data=sizes.data))
    lam = float(np.linalg.eigvalsh(shifted_ntk(p.X, p.b))[0])
    delta = separation(p.X, antipodal=False)  # the statement's delta: the smallest distance
    v, margin, detail, lower, upper = verdict(lam, p.b, delta, sizes.n)
    return CheckResult(
        key="lambda_bounds", statement=STATEMENT, source=SOURCE,
        parameters={"alpha": alpha, "m": sizes.m, "n": sizes.n, "d": sizes.d, "b": p.b},
        measured={"lambda": lam, "delta": delta}, bound={"lower": lower, "upper": upper},
        verdict=v, margin=margin, detail=detail,
    )
