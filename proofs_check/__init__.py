"""Numerical checks of the papers' statements, one module per statement.

Each module exposes ``check(impl, alpha, sizes) -> CheckResult`` (statement, source,
parameters, measured values, bound, verdict, margin) and a pure ``verdict`` function that
the tests feed planted violations. Measurements go through the registry, so any
implementation can be used.
"""

from __future__ import annotations

from . import (
    contraction,
    cost_scaling,
    flips,
    lambda_bounds,
    movement,
    ntk_eigen,
    sparsity_init,
    sparsity_training,
    width,
)
from .common import FAILS, FULL, HOLDS, NA, QUICK, CheckResult, Sizes

#: In the order of the statements (issue numbering 1..9).
CHECKS = [
    sparsity_init, sparsity_training, flips, movement, ntk_eigen, lambda_bounds, contraction, width, cost_scaling,
]

__all__ = ["CHECKS", "run_all", "CheckResult", "Sizes", "QUICK", "FULL", "HOLDS", "FAILS", "NA"]


def run_all(impl: str = "band", alphas=(0.24, 0.5), sizes: Sizes = QUICK, progress=None) -> list[CheckResult]:
    """Every check at every alpha. ``progress(label)`` is called before each."""
    out = []
    for alpha in alphas:
        for mod in CHECKS:
            if progress:
                progress(f"{mod.__name__.rsplit('.', 1)[-1]} alpha={alpha:g}")
            out.append(mod.check(impl=impl, alpha=alpha, sizes=sizes))
    return out
