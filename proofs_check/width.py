"""Check 8: the width the theory requires, beside the widths used (informational)."""

from __future__ import annotations

import math

import numpy as np

from .common import NA, QUICK, CheckResult
from .ntk_eigen import shifted_ntk
from sublin_bench import ProblemSpec, make_problem

STATEMENT = "The theory needs m = Omega(max(n^4 / lambda^4, n^2 d log(16 n / rho) / lambda^2))."
SOURCE = "arXiv 2208.04508, width condition of the main theorem"
RHO = 0.01  # failure probability


def check(impl: str = "band", alpha: float = 0.24, sizes=QUICK) -> CheckResult:
    m, n, d = sizes.m, sizes.n, sizes.d
    p = make_problem(ProblemSpec(m=m, n=n, d=d, alpha=alpha, seed=sizes.seed, data=sizes.data))
    lam = float(np.linalg.eigvalsh(shifted_ntk(p.X, p.b))[0])
    need = max(n**4 / lam**4, n * n * d * math.log(16 * n / RHO) / lam**2) if lam > 0 else math.inf
    gap = math.log2(need / m) if math.isfinite(need) else math.inf
    return CheckResult(
        key="width", statement=STATEMENT, source=SOURCE,
        parameters={"alpha": alpha, "n": n, "d": d, "rho": RHO, "lambda": lam},
        measured={"largest_m_used": m}, bound={"required_m": need},
        verdict=NA, margin=-gap,
        detail=(f"required m ~ {need:.3e} (constants taken as 1) against m = {m}: "
                f"{gap:.1f} doublings ({need / m:.1e} times) beyond the widths used; informational"),
    )
