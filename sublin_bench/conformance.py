"""Step-by-step comparison of an implementation with the reference (``dense``).

Used by the conformance tests and by ``sublin-bench verify``. Both trainers start from
the same ``W0``; after every step, every interface method is compared.

Tolerances (the contract, documented in README.md)
--------------------------------------------------
Exact arithmetic would make every implementation agree exactly. In floating point they
may sum in different orders, so each comparison allows a rounding budget derived from a
first-order error model, with ``u`` the unit roundoff of the working dtype
(``2**-53`` or ``2**-24``) and ``SAFETY = 16``. ``E_t`` bounds ``||W_t - W_t^ref||_F``:

* ``E_0 = 0`` (same ``W0``, bit for bit);
* while the active sets agree, f is linear in W on them, so a weight difference
  propagates as ``δW <- (I - eta J^T G^+ J) δW``, a map of norm ``max(1, |1 - eta|)``
  (``J^T G^+ J`` is a projector). Each step adds the fresh rounding of the residual,
  the solve and the update:
  ``E_{t+1} = max(1, |1-eta|) E_t + eta ||δf_round|| / sqrt(λ_min)
  + eta sqrt(λ_max) n u cond(G) ||g|| + (n + 2) u eta sqrt(λ_max) ||g||``
  with ``δf_round,i = sqrt(k_i / m)(d + 2) u max||w_r|| + sqrt(k_i + 2) u s_i`` and
  ``s_i = sum_{r in S_i} |z_ri - b| / sqrt m``. The rounding errors of the ``k_i``
  terms of a sum are independent, so they accumulate like ``sqrt(k_i)`` rather than
  ``k_i`` (the probabilistic bound of Higham and Mary, SIAM J. Sci. Comput. 2019, which
  holds with probability ``1 - 2 exp(-SAFETY^2 / 2)``-ish per sum); each single inner
  product keeps the worst-case ``(d + 2) u ||w_r||``;
* pre-activations: ``|δz_ri| <= E_t + (d + 2) u ||w_r||``;
* active sets: exactly equal, except pairs whose reference ``z_ri`` lies within
  ``SAFETY`` times that bound of ``b``. A disagreement there is a genuine tie, after
  which the two trajectories may legitimately fork: the comparison stops ("tie");
* Gram: ``|δG_ij| <= SAFETY (n + d + 2) u max|G|`` (equal sets give equal counts);
* predictions: ``|δf_i| <= SAFETY (sqrt(k_i / m) E_t + δf_round,i)``;
* weights: ``max|δW| <= SAFETY E_t + 4 u max|W|``.

When the modelled error grows past ``HORIZON_REL * max|W|`` (the trajectory is so
ill-conditioned that rounding dominates) the comparison stops ("horizon"). Stopping is
reported, never counted as agreement of the steps not compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import registry
from .linalg import rows_of, solve_gram
from .problem import Problem

SAFETY = 16.0
#: An iterative solve passes if its achieved relative residual is within this factor of
#: its tolerance (scipy's CG stops on the preconditioned residual, which may differ from
#: ``||G g - r|| / ||r||`` by the preconditioner's condition number).
SOLVER_SLACK = 100.0
HORIZON_REL = {"float64": 1e-8, "float32": 1e-3}

AGREE, DISAGREE, TIE, HORIZON = "agree", "disagree", "tie", "horizon"


@dataclass
class Comparison:
    """Outcome of :func:`compare`."""

    name: str
    reference: str
    spec: object
    step_size: float
    steps: int
    status: str = AGREE
    steps_compared: int = 0
    message: str = ""
    worst: dict = field(default_factory=dict)  # quantity -> max(error / tolerance)

    @property
    def ok(self) -> bool:
        """True unless a genuine disagreement was found."""
        return self.status != DISAGREE

    def _note(self, key: str, ratio: float) -> None:
        self.worst[key] = max(self.worst.get(key, 0.0), float(ratio))


def _check_csr(csr, n: int, m: int, who: str) -> tuple[np.ndarray, np.ndarray] | str:
    try:
        indptr, indices = csr
    except (TypeError, ValueError):
        return f"{who}.active_sets() must return (indptr, indices), got {type(csr).__name__}"
    indptr, indices = np.asarray(indptr), np.asarray(indices)
    if indptr.dtype != np.int64 or indices.dtype != np.int64:
        return f"{who}.active_sets() must return int64 arrays, got {indptr.dtype}/{indices.dtype}"
    if indptr.shape != (n + 1,) or indptr[0] != 0 or indptr[-1] != indices.size or np.any(np.diff(indptr) < 0):
        return f"{who}.active_sets() indptr is not a valid CSR pointer array for n={n}"
    if indices.size and (indices.min() < 0 or indices.max() >= m):
        return f"{who}.active_sets() has neuron indices outside [0, {m})"
    for i in range(n):
        row = indices[indptr[i] : indptr[i + 1]]
        if row.size > 1 and np.any(np.diff(row) <= 0):
            return f"{who}.active_sets() row {i} is not sorted and unique"
    return indptr, indices


def _mask(csr, n: int, R: np.ndarray) -> np.ndarray:
    """The fired-set indicator restricted to the neurons ``R`` (sorted): ``(n, len(R))``.
    Every index of ``csr`` must lie in ``R``."""
    indptr, indices = csr
    out = np.zeros((n, R.size), dtype=bool)
    out[rows_of(indptr), np.searchsorted(R, indices)] = True
    return out


#: Above this many bytes of (m, n + d) float64 arrays, the comparison looks at the rows
#: that matter instead of all m (see :func:`compare`).
ALL_ROWS_BYTES = 256 << 20
#: Rows drawn at random (seeded) to check that the rest of W is untouched.
SPOT_ROWS = 512


def _gram_tolerance(G: np.ndarray, n: int, d: int, u: float, m: int) -> float:
    """The allowed max-entry difference of two Gram matrices of the same fired sets."""
    return SAFETY * (n + d + 2) * u * max(float(np.abs(G).max()), 1.0 / m)


def _prediction_rounding(fired, m: int, d: int, u: float, rownorm_max: float, s) -> np.ndarray:
    """A bound on ``|f_i|``'s rounding, per input: the fired pre-activations' own rounding
    (``(d + 2) u ||w_r||`` each, summed over ``|S_i|`` terms in quadrature) plus the sum's
    (``s_i = sum_{r in S_i} |z_ri - b| / sqrt m``)."""
    return np.sqrt(fired / m) * (d + 2) * u * rownorm_max + np.sqrt(fired + 2) * u * s


def _step_error(sol, df_round, step_size: float, n: int, u: float) -> tuple[float, float]:
    """What one Gauss-Newton step adds to the weights' error bound through the solve
    ``sol`` of predictions off by ``df_round`` (the rounding model of :func:`compare`), and
    ``||J^T g||``'s bound ``sqrt(lambda_max) ||g||``."""
    inv_sqrt = 0.0 if sol.rank == 0 else 1.0 / math.sqrt(sol.eig_min_kept)
    jt = math.sqrt(max(sol.eig_max, 0.0)) * float(np.linalg.norm(sol.g))
    return (step_size * inv_sqrt * float(np.linalg.norm(df_round))
            + step_size * (n * sol.condition + n + 2) * u * jt), jt


def _rows(trainer, R: np.ndarray, m: int) -> np.ndarray:
    """Rows ``R`` of the trainer's current weights: ``weights_at`` where it has one (the
    implicit implementations), else cut from ``weights()``."""
    if R.size == m:
        return np.asarray(trainer.weights())
    if hasattr(trainer, "weights_at"):
        return np.asarray(trainer.weights_at(R))
    return np.asarray(trainer.weights())[R]


def compare(
    problem: Problem,
    name: str,
    *,
    steps: int = 4,
    step_size: float = 1.0,
    reference: str = "dense",
    solver: str = "exact",
    create=None,
) -> Comparison:
    """Run ``name`` and ``reference`` side by side for ``steps`` steps and compare every
    interface method after each. ``O(steps * m n d)``.

    ``solver`` is the implementation's (:mod:`sublin_bench.solvers`). The reference solves
    exactly, except for ``gd``, whose step is not an approximation of the exact one: both
    sides then run ``gd`` (an independent reference of its own: dense products). An
    iterative solve (``sketch``, ``cg``) adds to the modelled weight error its own error,
    bounded from the relative residual ``rho`` it achieved (``StepInfo.solver_residual``,
    which must be within ``SOLVER_SLACK`` times its tolerance):
    ``||g - g*|| <= rho ||r|| / lambda_min``, moving W by at most
    ``eta sqrt(lambda_max) ||g - g*||``. ``gd`` adds the rounding of its ``G v`` products
    through the power iteration: ``eta SAFETY p (n + d + 2) u ||J^T g||`` for ``p`` power
    iterations.

    Where the ``(m, n + d)`` arrays of the comparison would exceed :data:`ALL_ROWS_BYTES`,
    the weights and pre-activations are compared on the rows that matter: every neuron
    either side reports as fired, every neuron that has moved so far (those fired at an
    earlier step), and :data:`SPOT_ROWS` neurons drawn at random, which must still hold
    their initial weights. Active sets are always compared whole (CSR), exactly.

    ``create`` builds the implementation's side (default :func:`registry.create`; a
    :meth:`sharding.Cluster.create` compares a sharded run with the single-process
    reference).
    """
    spec = problem.spec
    res = Comparison(name, reference, spec, step_size, steps)
    impl = (create or registry.create)(name, problem, step_size=step_size, solver=solver)
    ref = registry.create(reference, problem, step_size=step_size, solver="gd" if impl.solver.name == "gd" else "exact")
    m, n, d = spec.m, spec.n, spec.d
    u = float(np.finfo(spec.dtype).eps) / 2
    X64 = problem.X.astype(np.float64)
    b = problem.b
    E = 0.0  # modelled bound on |W_impl - W_ref| (max abs entry)
    every = m * (n + d) * 8 <= ALL_ROWS_BYTES
    moved_so_far = np.empty(0, dtype=np.int64)
    spot = np.unique(np.random.default_rng(0).integers(0, m, size=min(m, SPOT_ROWS))).astype(np.int64)

    def fail(msg: str) -> Comparison:
        res.status, res.message = DISAGREE, f"step {t}: {msg}"
        return res

    prev_flips = None
    for t in range(steps + 1):
        csr = _check_csr(impl.active_sets(), n, m, name)
        if isinstance(csr, str):
            return fail(csr)
        ref_csr = ref.active_sets()
        R = (np.arange(m, dtype=np.int64) if every
             else np.unique(np.concatenate([csr[1], ref_csr[1], moved_so_far, spot])))
        W_ref = _rows(ref, R, m).astype(np.float64)
        if not np.all(np.isfinite(W_ref)):
            res.status, res.message = HORIZON, f"step {t}: the reference weights are no longer finite"
            return res
        W = _rows(impl, R, m)
        if W.shape != (R.size, d):
            return fail(f"weights() has shape {W.shape}, expected {(m, d) if every else (R.size, d)}")
        wmax = float(np.abs(W_ref).max()) if W_ref.size else 0.0
        rownorm = np.linalg.norm(W_ref, axis=1)
        Z = W_ref @ X64.T  # (m, n) reference pre-activations
        dz = E + (d + 2) * u * rownorm[:, None]  # (m, 1) bound on |δz|

        # weights
        err = float(np.abs(W.astype(np.float64) - W_ref).max())
        tol = SAFETY * E + 4 * u * max(wmax, 1.0)
        res._note("weights", err / tol)
        if err > tol:
            r = int(R[np.abs(W.astype(np.float64) - W_ref).max(axis=1).argmax()])
            return fail(f"weights differ by {err:.3e} (tolerance {tol:.3e}), worst neuron {r}")

        # active sets
        fired_mask = _mask(ref_csr, n, R)
        diff = _mask(csr, n, R) ^ fired_mask
        if diff.any():
            ambiguous = np.abs(Z - b) <= SAFETY * dz
            real = diff & ~ambiguous.T
            if real.any():
                i, c = map(int, np.argwhere(real)[0])
                return fail(
                    f"active set of input {i} differs at neuron {int(R[c])}: reference z={Z[c, i]:.17g}, "
                    f"b={b:.17g}, in reference: {bool(fired_mask[i, c])}"
                )
            res.status, res.message = TIE, (
                f"step {t}: {int(diff.sum())} activation(s) within rounding of the threshold "
                "differ; the trajectories may fork legitimately, comparison stopped"
            )
            return res
        if prev_flips is not None and prev_flips[0] != prev_flips[1]:
            return fail(f"step {t - 1} reported {prev_flips[0]} flips, reference {prev_flips[1]}")
        fired = np.diff(ref_csr[0])

        # Gram
        G, G_ref = np.asarray(impl.gram(), dtype=np.float64), ref.gram()
        if G.shape != (n, n):
            return fail(f"gram() has shape {G.shape}, expected {(n, n)}")
        err = float(np.abs(G - G_ref).max())
        tol = _gram_tolerance(G_ref, n, d, u, m)
        res._note("gram", err / tol)
        if err > tol:
            i, j = np.unravel_index(np.abs(G - G_ref).argmax(), G.shape)
            return fail(f"gram differs by {err:.3e} at ({i}, {j}) (tolerance {tol:.3e})")

        # predictions
        f, f_ref = impl.predict(), ref.predict()
        if f.shape != (n,) or f.dtype != np.float64:
            return fail(f"predict() must return float64 of shape {(n,)}, got {f.dtype} {f.shape}")
        s = np.where(fired_mask, np.abs(Z.T - b), 0.0).sum(axis=1) / math.sqrt(m)
        df_round = _prediction_rounding(fired, m, d, u, float(rownorm.max()) if rownorm.size else 0.0, s)
        df_model = np.sqrt(fired / m) * E + df_round
        tol_f = SAFETY * df_model + 1e-300
        errs = np.abs(f - f_ref)
        res._note("predict", float((errs / tol_f).max()))
        if np.any(errs > tol_f):
            i = int((errs / tol_f).argmax())
            return fail(f"predict differs at input {i}: {f[i]!r} vs {f_ref[i]!r} (tolerance {tol_f[i]:.3e})")

        res.steps_compared = t
        if t == steps:
            break

        if impl.solver.name in ("sketch", "cg"):
            k_fired = int((fired > 0).sum())
            rank = solve_gram(G_ref, f_ref - problem.y, fired > 0).rank
            if rank < k_fired:
                res.status, res.message = HORIZON, (
                    f"step {t}: G is rank deficient (rank {rank} of {k_fired} fired inputs), so G g = r has no "
                    f"exact solution and the {impl.solver.name} solve's bound does not apply; comparison stopped")
                return res

        # one step each, then the StepInfo fields that must agree
        moved_so_far = np.union1d(moved_so_far, ref_csr[1])
        info, info_ref = impl.step(), ref.step()
        if info.moved != info_ref.moved:
            return fail(f"step reported {info.moved} moved neurons, reference {info_ref.moved}")
        rn_tol = SAFETY * float(np.linalg.norm(df_model)) + 4 * u * info_ref.residual_norm
        if abs(info.residual_norm - info_ref.residual_norm) > rn_tol + 1e-300:
            return fail(f"residual norm {info.residual_norm!r} vs {info_ref.residual_norm!r}")
        if "work" not in info.work:
            return fail("StepInfo.work has no 'work' counter")
        prev_flips = (info.flips, info_ref.flips)

        # propagate the error model through the solve and the update
        sol = info_ref.gram_solve if impl.solver.name == "gd" else solve_gram(G_ref, f_ref - problem.y, fired > 0)
        added, jt = _step_error(sol, df_round, step_size, n, u)
        E = max(1.0, abs(1.0 - step_size)) * E + added
        if impl.solver.name in ("sketch", "cg") and sol.rank:
            tol_s = impl.solver.tol
            if not info.solver_residual <= SOLVER_SLACK * tol_s:
                return fail(f"the {impl.solver.name} solve reached a relative residual of {info.solver_residual:.2e}, "
                            f"not its tolerance {tol_s:.0e}")
            rnorm = float(np.linalg.norm(f_ref - problem.y))
            E += step_size * math.sqrt(sol.eig_max) * max(info.solver_residual, u) * rnorm / sol.eig_min_kept
        elif impl.solver.name == "gd":
            E += step_size * SAFETY * impl.solver.power_iterations * (n + d + 2) * u * jt
        if not math.isfinite(E) or E > HORIZON_REL[spec.dtype] * max(wmax, 1.0):
            res.steps_compared = t
            res.status, res.message = HORIZON, (
                f"step {t}: Gram condition {sol.condition:.2e} makes the modelled rounding error "
                f"{E:.2e} too large to compare further"
            )
            return res
    return res


# -- approximate implementations ----------------------------------------------------------

#: Rows of W per block when the true fired sets are evaluated (a few MiB of Z).
_TRUTH_ROWS = 1 << 15


@dataclass
class FiredTruth:
    """The fired sets at given weights, as sorted pair keys ``i * m + r``: ``sure`` (``z``
    above ``b`` by more than the rounding allowance) and ``possible`` (within it of ``b``
    or above), with the weights' pre-activations kept for the found pairs."""

    sure: np.ndarray
    possible: np.ndarray


def fired_truth(W: np.ndarray, X: np.ndarray, b: float, dtype: str) -> FiredTruth:
    """Evaluate ``z_ri = <w_r, x_i>`` for every pair (``O(m n d)``, in blocks) and sort the
    pairs into surely fired and possibly fired: a pair within ``SAFETY (d + 2) u ||w_r||``
    of ``b`` (the rounding of one evaluation) may legitimately be reported either way."""
    m, d = W.shape
    u = float(np.finfo(dtype).eps) / 2
    X64 = np.asarray(X, dtype=np.float64)
    sure, possible = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for s in range(0, m, _TRUTH_ROWS):
        Wb = np.asarray(W[s : s + _TRUTH_ROWS], dtype=np.float64)
        Z = Wb @ X64.T
        slack = SAFETY * (d + 2) * u * np.linalg.norm(Wb, axis=1)[:, None]
        for keep, thr in ((sure, b + slack), (possible, b - slack)):
            r, i = np.nonzero(Z > thr)
            keep.append(i.astype(np.int64) * m + (r + s))
    return FiredTruth(np.sort(np.concatenate(sure)), np.sort(np.concatenate(possible)))


def exact_predictions(W: np.ndarray, problem: Problem) -> np.ndarray:
    """``f(W, x_i)`` over every neuron, in blocks of rows (``O(m n d)``): the predictions
    of the weights themselves, whatever sets an implementation reports."""
    X64 = problem.X.astype(np.float64)
    a = problem.a.astype(np.float64)
    f = np.zeros(problem.n)
    for s in range(0, problem.m, _TRUTH_ROWS):
        f += a[s : s + _TRUTH_ROWS] @ np.maximum(W[s : s + _TRUTH_ROWS] @ X64.T - problem.b, 0.0)
    return f / math.sqrt(problem.m)


def pair_keys(csr, m: int) -> np.ndarray:
    """CSR fired sets -> sorted pair keys ``i * m + r``."""
    indptr, indices = csr
    return np.sort(rows_of(indptr) * m + np.asarray(indices, dtype=np.int64))


def recall_precision(found: np.ndarray, truth: FiredTruth) -> tuple[float, float, np.ndarray]:
    """``|found ∩ fired| / |fired|`` (pairs within rounding of ``b`` count as fired only if
    found), ``|found ∩ possibly fired| / |found|``, and the found pairs that cannot fire."""
    hit_sure = np.isin(truth.sure, found, assume_unique=True).sum()
    extra = np.setdiff1d(found, truth.sure, assume_unique=True)  # found beyond the sure ones
    ok_extra = np.isin(extra, truth.possible, assume_unique=True)
    fired = truth.sure.size + int(ok_extra.sum())
    recall = 1.0 if fired == 0 else float(hit_sure + ok_extra.sum()) / fired
    precision = 1.0 if found.size == 0 else float(found.size - (~ok_extra).sum()) / found.size
    return recall, precision, extra[~ok_extra]


@dataclass
class ApproximateComparison:
    """Outcome of :func:`compare_approximate`: measured, not asserted, apart from the
    checks every implementation must pass (``status``)."""

    name: str
    reference: str
    spec: object
    step_size: float
    steps: int
    status: str = AGREE
    message: str = ""
    recall: list = field(default_factory=list)  # per step t = 0 .. steps
    precision: list = field(default_factory=list)
    residual: list = field(default_factory=list)  # ||f(W_t) - y||, exact, at the impl's weights
    residual_reference: list = field(default_factory=list)
    prediction_gap: list = field(default_factory=list)  # ||f(W_t) - f_ref(W_ref_t)|| / ||y||
    worst: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != DISAGREE

    @property
    def steps_compared(self) -> int:
        return max(len(self.recall) - 1, 0)

    @property
    def mean_recall(self) -> float:
        return float(np.mean(self.recall)) if self.recall else float("nan")

    _note = Comparison._note


def compare_approximate(
    problem: Problem,
    name: str,
    *,
    steps: int = 4,
    step_size: float = 1.0,
    reference: str = "dense",
    create=None,
) -> ApproximateComparison:
    """Run an approximate implementation beside ``reference`` and measure, step after step:

    * **recall** ``|found ∩ fired| / |fired|`` and **precision** ``|found ∩ fired| / |found|``
      of its reported sets against the true fired sets *at its own weights* (``O(m n d)``
      per step, outside any timing). Precision must be 1: a reported neuron that does not
      fire (beyond the rounding of one inner product) is a disagreement;
    * its **exact residual** ``||f(W_t) - y||`` and the **prediction gap**
      ``||f(W_t) - f_ref(W_ref,t)|| / ||y||`` to the reference's own trajectory.

    And checks that the implementation is consistent with the sets it reports, with the
    tolerances of :func:`compare` at ``E = 0`` (its own weights): ``predict()`` is
    ``f`` summed over the reported sets, ``gram()`` their Gram matrix, and each step moves
    ``W`` by the Gauss-Newton update solved from those (the one-step error model of
    :func:`compare`). An approximate implementation may miss neurons; it may not invent
    them or compute a different step from the ones it found.
    """
    spec = problem.spec
    res = ApproximateComparison(name, reference, spec, step_size, steps)
    impl = (create or registry.create)(name, problem, step_size=step_size)  # create: as for compare
    ref = registry.create(reference, problem, step_size=step_size)
    m, n, d = spec.m, spec.n, spec.d
    u = float(np.finfo(spec.dtype).eps) / 2
    X64 = problem.X.astype(np.float64)
    y = problem.y
    ynorm = float(np.linalg.norm(y)) or 1.0
    b = problem.b
    a = problem.a.astype(np.float64)
    XXt = X64 @ X64.T
    expected_W = None
    t = 0

    def fail(msg: str) -> ApproximateComparison:
        res.status, res.message = DISAGREE, f"step {t}: {msg}"
        return res

    for t in range(steps + 1):
        csr = _check_csr(impl.active_sets(), n, m, name)
        if isinstance(csr, str):
            return fail(csr)
        W = np.asarray(impl.weights(), dtype=np.float64)
        if W.shape != (m, d):
            return fail(f"weights() has shape {W.shape}, expected {(m, d)}")
        if expected_W is not None:
            W_exp, tol = expected_W
            err = float(np.abs(W - W_exp).max())
            res._note("weights", err / tol)
            if err > tol:
                r = int(np.abs(W - W_exp).max(axis=1).argmax())
                return fail(f"the step moved W by something else than the Gauss-Newton update of its own "
                            f"sets: off by {err:.3e} (tolerance {tol:.3e}), worst neuron {r}")
        truth = fired_truth(W, problem.X, b, spec.dtype)
        found = pair_keys(csr, m)
        recall, precision, wrong = recall_precision(found, truth)
        res.recall.append(recall)
        res.precision.append(precision)
        if wrong.size:
            i, r = divmod(int(wrong[0]), m)
            z = float(W[r] @ X64[i])
            return fail(f"reported neuron {r} for input {i}, which does not fire: z = {z:.17g} <= b = {b:.17g} "
                        f"({wrong.size} such pair(s))")

        # exact predictions at its weights, and the reference's
        Zf = np.einsum("pd,pd->p", W[csr[1]], X64[rows_of(csr[0])])  # z of the reported pairs
        rows = rows_of(csr[0])
        f_sets = np.bincount(rows, weights=a[csr[1]] * (Zf - b), minlength=n) / math.sqrt(m)
        f_true = exact_predictions(W, problem)
        f_ref = ref.predict()
        res.residual.append(float(np.linalg.norm(f_true - y)))
        res.residual_reference.append(float(np.linalg.norm(f_ref - y)))
        res.prediction_gap.append(float(np.linalg.norm(f_true - f_ref)) / ynorm)

        # consistency with its own sets (E = 0 in compare's model)
        fired = np.diff(csr[0])
        rownorm_max = float(np.linalg.norm(W[csr[1]], axis=1).max()) if csr[1].size else 0.0
        s_i = np.bincount(rows, weights=np.abs(Zf - b), minlength=n) / math.sqrt(m)
        df_round = _prediction_rounding(fired, m, d, u, rownorm_max, s_i)
        f = impl.predict()
        if f.shape != (n,) or f.dtype != np.float64:
            return fail(f"predict() must return float64 of shape {(n,)}, got {f.dtype} {f.shape}")
        errs = np.abs(f - f_sets)
        tol_f = SAFETY * df_round + 1e-300
        res._note("predict", float((errs / tol_f).max()))
        if np.any(errs > tol_f):
            i = int((errs / tol_f).argmax())
            return fail(f"predict() at input {i} is {f[i]!r}, but its reported set sums to {f_sets[i]!r}")
        C = np.zeros((n, n))
        if csr[1].size:
            M = np.zeros((n, m), dtype=np.float64)
            M[rows, csr[1]] = 1.0
            C = M @ M.T
        G_sets = XXt * C / m
        G = np.asarray(impl.gram(), dtype=np.float64)
        err = float(np.abs(G - G_sets).max()) if G.shape == (n, n) else math.inf
        tol = _gram_tolerance(G_sets, n, d, u, m)
        res._note("gram", err / tol)
        if err > tol:
            return fail(f"gram() differs from the Gram matrix of its reported sets by {err:.3e} (tolerance {tol:.3e})")
        if t == steps:
            break

        # the update its own sets imply, with compare's one-step error bound
        sol = solve_gram(G_sets, f_sets - y, fired > 0)
        coef = np.zeros((m, d))
        np.add.at(coef, csr[1], sol.g[rows][:, None] * X64[rows])
        W_next = W - step_size * (a / math.sqrt(m))[:, None] * coef
        E = _step_error(sol, df_round, step_size, n, u)[0]
        expected_W = (W_next, SAFETY * E + 4 * u * max(float(np.abs(W).max()), 1.0))
        impl.step()
        ref.step()
    return res


def measure_recall(trainer) -> dict:
    """The recall and precision of ``trainer``'s reported fired sets against the true ones
    at its own weights, and its exact residual ``||f(W_t) - y||`` (what an approximate
    implementation's own ``residual_norm``, summed over the sets it found, is not).
    ``O(m n d)``: for measuring, outside any timed region."""
    problem = trainer.problem
    m = problem.m
    W = np.asarray(trainer.weights(), dtype=np.float64)
    truth = fired_truth(W, problem.X, problem.b, problem.spec.dtype)
    recall, precision, _ = recall_precision(pair_keys(trainer.active_sets(), m), truth)
    f = exact_predictions(W, problem)
    return {"recall": recall, "precision": precision, "residual": float(np.linalg.norm(f - problem.y))}
