"""Check 5: the shifted NTK's least eigenvalue, and the Gram matrix during training."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, owens_t

from .common import FAILS, HOLDS, QUICK, CheckResult, trajectory_for
from sublin_bench import ProblemSpec, make_problem

STATEMENT = (
    "With lambda = lambda_min(H), H_ij = <x_i, x_j> P(Z_1 > b, Z_2 > b) (correlation <x_i, x_j>): "
    "lambda_min(G(0)) >= (3/4) lambda and lambda_min(G(t)) >= lambda / 2 throughout training."
)
SOURCE = "arXiv 2208.04508, NTK eigenvalue lemmas (initial Gram close to H; stays above lambda/2)"


def both_exceed(b: float, rho: np.ndarray) -> np.ndarray:
    """``P(Z_1 > b, Z_2 > b)`` for standard normals with correlation ``rho``, in closed form.

    With ``h = -b``: ``P = Phi_2(h, h; rho) = Phi(h) - 2 T(h, sqrt((1 - rho)/(1 + rho)))``, T being
    Owen's T function (exact at rho = ±1 too: T(h, 0) = 0, T(h, inf) = Phi(-|h|)/2).
    """
    rho = np.clip(np.asarray(rho, dtype=float), -1.0, 1.0)
    h = -float(b)
    with np.errstate(divide="ignore"):
        a = np.sqrt((1 - rho) / (1 + rho))
    t = np.where(np.isinf(a), 0.5 * ndtr(-abs(h)), owens_t(h, np.where(np.isinf(a), 0.0, a)))
    return np.maximum(ndtr(h) - 2 * t, 0.0)


def shifted_ntk(X: np.ndarray, b: float) -> np.ndarray:
    """``H_ij = <x_i, x_j> P(Z_1 > b, Z_2 > b)`` with correlation ``<x_i, x_j>``."""
    X = np.asarray(X, dtype=np.float64)
    C = np.clip(X @ X.T, -1.0, 1.0)
    return C * both_exceed(b, C)


def verdict(lam_H: float, lam_G0: float, lam_Gt: np.ndarray) -> tuple[str, float, str]:
    if lam_H <= 0:
        return FAILS, -1.0, f"lambda_min(H) = {lam_H:.3e} is not positive"
    r0 = lam_G0 / lam_H
    rt = float(np.min(lam_Gt)) / lam_H
    ok = r0 >= 0.75 and rt >= 0.5
    detail = f"lambda_min(G(0)) = {r0:.3f} lambda (needs >= 0.75); min_t lambda_min(G(t)) = {rt:.3f} lambda (needs >= 0.5)"
    return (HOLDS if ok else FAILS), min(r0 - 0.75, rt - 0.5), detail


def check(impl: str = "band", alpha: float = 0.24, sizes=QUICK) -> CheckResult:
    m = sizes.m
    p = make_problem(ProblemSpec(m=m, n=sizes.n, d=sizes.d, alpha=alpha, seed=sizes.seed, data=sizes.data))
    lam_H = float(np.linalg.eigvalsh(shifted_ntk(p.X, p.b))[0])
    traj = trajectory_for(impl, m, sizes, alpha)
    v, margin, detail = verdict(lam_H, traj.gram_min_eig[0], traj.gram_min_eig)
    return CheckResult(
        key="ntk_eigen", statement=STATEMENT, source=SOURCE,
        parameters={"impl": impl, "alpha": alpha, "m": m, "n": sizes.n, "d": sizes.d, "b": p.b},
        measured={"lambda_H": lam_H, "lambda_G": traj.gram_min_eig.tolist()},
        bound={"G0_over_lambda": 0.75, "Gt_over_lambda": 0.5}, verdict=v, margin=margin, detail=detail,
        series={"ratio": (traj.gram_min_eig / lam_H).tolist() if lam_H > 0 else []},
    )
