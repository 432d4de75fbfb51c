"""The interface every implementation provides (README.md, "Adding an implementation").

:class:`Trainer` holds the parts of an iteration that are the same for every
implementation (residual, Gram matrix from intersection counts, the least-squares solve,
timing, counters) and leaves to subclasses only what they compute differently: the
current predictions, the intersection counts ``|S_i ∩ S_j|``, the active sets, and the
weight update with its bookkeeping.
"""

from __future__ import annotations

import abc
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .errors import ConfigError, DivergenceError
from .linalg import GramSolve, gram_from_counts, input_gram, rows_of
from .problem import Problem, ProblemSpec
from .solvers import NeuronView, Solver, j_v, jt_u, make_solver

__all__ = ["Trainer", "StepInfo", "UpdateResult", "validate_step_size"]


@dataclass(frozen=True)
class StepInfo:
    """What one call to :meth:`Trainer.step` did.

    Attributes
    ----------
    step : int
        Index ``t`` of the iteration (0 for the first).
    residual_norm : float
        ``||f(W_t) - y||`` before the step.
    fired_mean, fired_max : float, int
        Mean and maximum of ``|S_i(t)|`` over inputs, before the step.
    flips : int
        ``sum_i |S_i(t+1) Δ S_i(t)|``: activations that changed in the step.
    moved : int
        Neurons whose weight the step changed (``|∪_i S_i(t)|``).
    gram_rank : int
        Rank of ``G_t`` as seen by the least-squares solve.
    gram_condition : float
        Effective condition number of ``G_t`` (largest over smallest kept eigenvalue).
        A diagnostic the iteration does not need: after a Cholesky solve it is computed
        (``eigvalsh`` of the fired block) when first read, outside the step's time.
    gram_solve : GramSolve
        The solve itself: ``g``, ``rank``, ``method`` and the spectrum. After a Cholesky
        solve it keeps the fired Gram block (``8 k^2`` bytes) until the spectrum is read.
    seconds : float
        Wall time of the step (including the solve).
    work : dict
        The implementation's work counters for this step (see ``Trainer.counters``).
    """

    step: int
    residual_norm: float
    fired_mean: float
    fired_max: int
    flips: int
    moved: int
    gram_rank: int
    gram_solve: GramSolve = field(repr=False, compare=False)
    seconds: float
    work: dict = field(default_factory=dict)
    #: The solver (``exact``, ``sketch``, ``cg``, ``gd``; :mod:`sublin_bench.solvers`), its
    #: iterations (products ``J^T u`` / ``J v`` pairs; 0 for ``exact``) and the achieved
    #: relative residual ``||G g - r|| / ||r||`` of the solve (0 for ``exact``).
    solver: str = "exact"
    solver_iterations: int = 0
    solver_residual: float = 0.0

    @property
    def gram_condition(self) -> float:
        return float(self.gram_solve.condition)

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("work", "gram_solve")}
        out["gram_condition"] = self.gram_condition
        out["gram_method"] = self.gram_solve.method
        out["work"] = dict(self.work)
        return out


def _norm(r: np.ndarray) -> float:
    """``||r||``: ``sqrt(r @ r)`` (what np.linalg.norm computes, for less), rescaled when
    the sum of squares overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        ss = float(r @ r)
    if math.isfinite(ss):
        return math.sqrt(ss)
    s = float(np.max(np.abs(r)))
    return s * math.sqrt(float((r / s) @ (r / s))) if math.isfinite(s) and s > 0 else s


@dataclass
class UpdateResult:
    """Returned by :meth:`Trainer._update`: what the weight update changed."""

    flips: int
    moved: int
    work: dict


def validate_step_size(step_size) -> float:
    try:
        eta = float(step_size)
    except (TypeError, ValueError):
        raise ConfigError(f"step_size must be a positive number, got {step_size!r}.") from None
    if not math.isfinite(eta) or eta <= 0:
        raise ConfigError(f"step_size must be a finite number > 0, got {step_size!r}. The default is 1.0.")
    return eta


class Trainer(abc.ABC):
    """One training run of the two-layer shifted-ReLU network by Gauss-Newton.

    Subclasses are found through the entry-point group ``sublin_bench.impls`` and built
    with ``registry.create(name, problem, step_size=1.0)``. All array results are host
    numpy arrays.

    Subclasses implement :meth:`_predictions`, :meth:`_counts`, :meth:`_update`,
    :meth:`active_sets` and :meth:`weights`, and may override :meth:`available` and
    :meth:`memory_estimate`.

    Counters
    --------
    Every implementation reports ``work``: the number of neuron-input pair evaluations and
    index-node visits it performed (its unit of per-iteration work). Others are
    implementation-specific (``tree_nodes_visited``, ``candidates_evaluated``, ...).
    """

    #: Registry name; set by subclasses.
    name: ClassVar[str] = ""
    #: Whether per-iteration work is meant to be independent of m.
    sublinear: ClassVar[bool] = False
    #: Whether the trainer reads ``problem.W0`` whole (then the problem's ``m d`` numbers
    #: count in its memory estimate); implicit implementations stream blocks instead.
    holds_problem_weights: ClassVar[bool] = True
    #: Whether the implementation computes the exact step (and must agree with dense).
    exact: ClassVar[bool] = True

    def __init__(self, problem: Problem, *, step_size: float = 1.0):
        if not isinstance(problem, Problem):
            raise ConfigError(
                f"a Trainer needs a Problem (from make_problem or Problem.from_arrays), "
                f"got {type(problem).__name__}."
            )
        self.problem = problem
        self.step_size = validate_step_size(step_size)
        self.t = 0
        self._XXt = input_gram(problem.X)
        self._totals: Counter = Counter()
        self.build_seconds = 0.0
        self.solver: Solver = make_solver("exact")

    def set_solver(self, solver="exact", **options) -> None:
        """Solve the Gauss-Newton system with ``solver`` from the next step on (a name from
        :data:`sublin_bench.solvers.SOLVERS` with its options, or a Solver)."""
        self.solver = make_solver(solver, **options)

    # -- what implementations provide -------------------------------------------------

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Whether this implementation can run here, and why not if it cannot."""
        return True, ""

    @classmethod
    def memory_estimate(cls, spec: ProblemSpec) -> int:
        """Bytes the trainer allocates for ``spec`` (beyond the problem itself)."""
        return spec.m * spec.d * spec.itemsize

    @abc.abstractmethod
    def _predictions(self) -> np.ndarray:
        """``f(W_t, x_i)`` for all i, float64 (n,)."""

    @abc.abstractmethod
    def _counts(self) -> np.ndarray:
        """``|S_i(t) ∩ S_j(t)|`` as an (n, n) array of exact integers."""

    @abc.abstractmethod
    def _update(self, g: np.ndarray) -> UpdateResult:
        """Apply ``w_r <- w_r - eta (a_r / sqrt m) sum_{i: r in S_i} g_i x_i`` and bring
        every cached quantity to ``W_{t+1}``."""

    @abc.abstractmethod
    def active_sets(self) -> tuple[np.ndarray, np.ndarray]:
        """``S_i(t)`` as CSR ``(indptr int64 (n+1,), indices int64)``, rows sorted."""

    @abc.abstractmethod
    def weights(self) -> np.ndarray:
        """``W_t`` as an (m, d) array (a copy)."""

    def _fired_sizes(self) -> np.ndarray:
        """``|S_i(t)|`` for every input (n,), what a matrix-free solver's step reads instead
        of the counts. This default takes the lengths of :meth:`active_sets`."""
        return np.diff(self.active_sets()[0])

    def neuron_view(self) -> NeuronView:
        """The fired pairs neuron by neuron (:class:`~sublin_bench.solvers.NeuronView`), from
        which ``J v`` and ``J^T u`` are computed. This default derives it from
        :meth:`active_sets` (``O(K log K)``); the sparse implementations return their own
        state."""
        ptr, idx = self.active_sets()
        inputs = rows_of(ptr)
        order = np.lexsort((inputs, idx))
        rows, first = np.unique(idx[order], return_index=True)
        uptr = np.append(first, idx.size).astype(np.int64)
        return NeuronView(a=self.problem.a[rows].astype(np.float64), ptr=uptr,
                          inputs=inputs[order].astype(np.int64), problem_rows=rows.astype(np.int64),
                          m=self.problem.m)

    def _X64_products(self) -> np.ndarray:
        """The inputs in float64, for the products."""
        X = getattr(self, "_X64", None)
        return X if X is not None else self.problem.X.astype(np.float64)

    def jt_u(self, u) -> tuple[np.ndarray, np.ndarray]:
        """``J^T u`` at the current weights: ``(rows, V)`` with ``rows`` the neurons that
        fire for some input (problem order, ascending) and ``V`` (len(rows), d) their rows
        of ``J^T u`` (every other row is zero). ``O(K d)`` on the implementation's own
        fired pairs."""
        u = np.asarray(u, dtype=np.float64)
        if u.shape != (self.problem.n,):
            raise ConfigError(f"jt_u needs a vector of length n = {self.problem.n}, got shape {u.shape}.")
        view = self.neuron_view()
        V = jt_u(view, self._X64_products(), u)
        order = np.argsort(view.problem_rows, kind="stable")
        return view.problem_rows[order], V[order]

    def j_v(self, rows, V) -> np.ndarray:
        """``J v`` at the current weights for ``v`` given on the neurons ``rows`` (problem
        order, ascending) as ``V`` (len(rows), d) and zero elsewhere. ``O(K d)``."""
        rows = np.asarray(rows, dtype=np.int64)
        V = np.asarray(V, dtype=np.float64)
        if V.shape != (rows.size, self.problem.d):
            raise ConfigError(f"j_v needs V of shape (len(rows), d) = {(rows.size, self.problem.d)}, got {V.shape}.")
        view = self.neuron_view()
        pos = np.searchsorted(rows, view.problem_rows)
        hit = (pos < rows.size) & (rows[np.minimum(pos, max(rows.size - 1, 0))] == view.problem_rows) \
            if rows.size else np.zeros(view.k, dtype=bool)
        Vu = np.zeros((view.k, self.problem.d))
        Vu[hit] = V[pos[hit]]
        return j_v(view, self._X64_products(), Vu)

    def _sync(self) -> None:
        """Wait for queued device work (GPU implementations override this), so that a
        step's time includes it."""

    # -- the shared iteration ---------------------------------------------------------

    def predict(self) -> np.ndarray:
        """``f(W_t, x_i)`` for every input, float64 (n,)."""
        return np.array(self._predictions(), dtype=np.float64)

    def gram(self) -> np.ndarray:
        """``G_t = J_t J_t^T`` (n, n), float64."""
        return gram_from_counts(self._XXt, self._counts(), self.problem.m)

    @property
    def counters(self) -> dict:
        """Cumulative work counters since construction, plus ``steps``."""
        out = dict(self._totals)
        out["steps"] = self.t
        return out

    def step(self) -> StepInfo:
        """One Gauss-Newton iteration; returns its :class:`StepInfo`.

        Raises
        ------
        DivergenceError
            If the residual before the step, or the predictions after it, are not finite
            (the weights overflowed: the step size is far too large). The trainer is then
            unusable.
        """
        t0 = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected below
            f = np.asarray(self._predictions(), dtype=np.float64)
            r = f - self.problem.y
            if not np.isfinite(r).all():
                raise self._diverged("before")
            if self.solver.needs_gram:
                counts = np.asarray(self._counts())
                fired = np.diagonal(counts)  # |S_i|, exact integers in counts' dtype
                G = gram_from_counts(self._XXt, counts, self.problem.m)
            else:  # a matrix-free solver: no counts, no n x n Gram
                fired = np.asarray(self._fired_sizes())
                G = None
            sol = self.solver.solve(self, G, r, fired > 0)
            upd = self._update(sol.g)
            self._sync()
        seconds = time.perf_counter() - t0
        with np.errstate(over="ignore", invalid="ignore"):
            finite = np.isfinite(np.asarray(self._predictions(), dtype=np.float64)).all()
        if not finite:
            raise self._diverged("after", residual=_norm(r))
        self._totals.update(upd.work)
        info = StepInfo(
            step=self.t,
            residual_norm=_norm(r),
            fired_mean=float(fired.sum()) / fired.size,
            fired_max=int(fired.max()),
            flips=int(upd.flips),
            moved=int(upd.moved),
            gram_rank=sol.rank,
            gram_solve=sol,
            seconds=seconds,
            work=dict(upd.work),
            solver=self.solver.name,
            solver_iterations=sol.iterations,
            solver_residual=sol.relative_residual,
        )
        self.t += 1
        return info

    def _diverged(self, when: str, residual: float | None = None) -> DivergenceError:
        where = f"before step {self.t}" if when == "before" else f"in step {self.t}"
        before = "" if residual is None else f" (residual norm {residual:.3e} before it)"
        return DivergenceError(
            f"training diverged {where}: the predictions overflowed to inf/NaN{before} with step size "
            f"{self.step_size:g}. Use a smaller step size (the Gauss-Newton default is 1.0)."
        )

    def run(self, steps: int) -> list[StepInfo]:
        """``steps`` consecutive iterations."""
        return [self.step() for _ in range(int(steps))]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.problem.spec.describe()} t={self.t}>"
