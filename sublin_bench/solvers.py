"""How the Gauss-Newton system ``G g = r`` is solved: one place, four choices.

``G = J J^T`` (n x n), ``r = f - y``; the update ``W <- W - eta J^T g`` is the same for
every solver (each implementation's ``_update``). What changes is ``g``:

``exact``
    The minimum-norm least-squares solution from the Gram matrix formed from the
    intersection counts (:func:`sublin_bench.linalg.solve_gram`: Cholesky, or ``eigh``
    when the fired block is not provably well conditioned). ``O(n^3)``.
``sketch``
    Brand, Peng, Song and Weinstein (ITCS 2021): sketch ``J^T`` to ``s = gamma k`` rows
    (``k`` the inputs that fire anything), take ``R`` from the QR of ``S J^T`` (or the SVD
    when ``R`` is numerically singular), and iterate on the preconditioned system with
    ``J v`` and ``J^T u`` products only. The sketch is a *sparse sign embedding*: every
    one of the ``|U| d`` non-zero rows of ``J^T`` goes to ``zeta`` (default 8) rows of the
    sketch with random signs, so ``S J^T`` costs ``zeta nnz(J^T)``, proportional to the
    fired pairs. An SRHT would mix all ``m d`` rows (``O(m d log(m d))``, linear in m)
    and a Gaussian sketch ``s m d``. Sparse sign embeddings with ``zeta = 8`` behave like
    Gaussian ones at ``s`` a small multiple of ``k`` (Martinsson and Tropp, Acta Numerica
    2020, section 9.2). The iteration is conjugate gradients on
    ``(P^T G P) h = P^T r``, ``g = P h``, ``P = R^-1``, with ``G v`` computed as
    ``J (J^T v)`` (scipy's ``cg``): with ``A = J^T P`` nearly orthonormal, ``P^T G P =
    A^T A`` has a condition number of a few, and the iteration count to a relative
    tolerance does not depend on m, n or the conditioning of ``G``. Why CG on ``A^T A``
    and not LSQR on ``A``: LSQR solves ``min ||A h - c||`` and needs the right-hand side
    as ``A^T c``, i.e. a ``c`` with ``J c = r`` (a solve of its own); with ``A``
    preconditioned to a condition number of ~2, squaring it costs CG nothing that LSQR
    would save. ``O(zeta K d + s k^2 + iterations K d)`` per step, ``K`` the fired pairs.
``cg``
    Conjugate gradients on ``G g = r`` itself, matrix-free (``G v = J (J^T v)``), with the
    Jacobi preconditioner ``diag(G)_i = |S_i| / m``. No sketch, no ``k^3`` term; the
    iteration count grows with ``sqrt(cond(G))``. Like any CG it assumes ``G`` is
    non-singular on the fired inputs (distinct inputs, enough fired neurons): on a rank
    deficient ``G`` with ``r`` outside its range the iterates grow without bound (use
    ``exact`` or ``sketch``, whose SVD branch restricts to the range).
``gd``
    Full-batch gradient descent on ``||f - y||^2 / 2``: ``g = rate r / lambda_max`` with
    ``lambda_max`` of ``G`` estimated by ``power_iterations`` power iterations (``G v``
    products, seeded start), so ``W <- W - eta rate J^T r / lambda_max``: the classical
    step ``1 / L`` of a quadratic with curvature ``L = lambda_max`` for ``rate = 1``;
    ``rate`` in (0, 2) is the rule's one knob.

Every solve returns a :class:`Solve` (a :class:`~sublin_bench.linalg.GramSolve` with
``iterations`` and the achieved relative residual ``||G g - r|| / ||r||``, computed with
one more product), which :class:`~sublin_bench.interface.StepInfo` reports.

The products
------------
``J`` has row i equal to ``(1/sqrt m) [a_r 1{r in S_i} x_i^T]_r``. Both products are
computed from an implementation's *neuron view* (:meth:`Trainer.neuron_view`): the
neurons ``U`` that fire for some input with, for each, the inputs it fires on. For the
sublinear implementations that is their own sparse state, so ``J v`` and ``J^T u`` cost
``O(K d)``; ``J^T u`` is non-zero only on the rows ``U`` and is returned on them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numba
import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator, cg

from .errors import ConfigError, SolverWarning
from .linalg import GramSolve, solve_gram

__all__ = ["SOLVERS", "Solve", "NeuronView", "make_solver", "parse_solver", "jt_u", "j_v", "view_counts", "view_gram_block"]

SOLVERS = ("exact", "sketch", "cg", "gd")


@dataclass(frozen=True)
class NeuronView:
    """The fired pairs, neuron by neuron: neuron ``rows[u]`` (sign ``a[u]``) fires on the
    inputs ``inputs[ptr[u]:ptr[u+1]]``. ``rows`` are in the implementation's stored order
    (what its private arrays use); ``problem_rows`` maps them to the problem's order."""

    a: np.ndarray  # (k,) float64 signs of the neurons U
    ptr: np.ndarray  # (k + 1,) int64
    inputs: np.ndarray  # (K,) int64
    problem_rows: np.ndarray  # (k,) int64 neuron indices in the problem's order
    m: int

    @property
    def k(self) -> int:
        return int(self.a.size)


@numba.njit(cache=True)
def _jt_u(a, ptr, inputs, X, u, inv_sqrt_m):
    """``(J^T u)_r = (a_r / sqrt m) sum_{i: r in S_i} u_i x_i`` on the rows U: (k, d)."""
    k = a.shape[0]
    d = X.shape[1]
    V = np.zeros((k, d))
    for t in range(k):
        s = a[t] * inv_sqrt_m
        for p in range(ptr[t], ptr[t + 1]):
            i = inputs[p]
            c0 = s * u[i]
            for c in range(d):
                V[t, c] += c0 * X[i, c]
    return V


@numba.njit(cache=True)
def _j_v(a, ptr, inputs, X, V, inv_sqrt_m):
    """``(J v)_i = (1 / sqrt m) sum_{r in S_i} a_r <v_r, x_i>`` with ``v`` given on the rows U."""
    n, d = X.shape
    out = np.zeros(n)
    for t in range(a.shape[0]):
        for p in range(ptr[t], ptr[t + 1]):
            i = inputs[p]
            z = 0.0
            for c in range(d):
                z += V[t, c] * X[i, c]
            out[i] += a[t] * z
    return out * inv_sqrt_m


@numba.njit(cache=True)
def _sketch_jt(a, ptr, inputs, X, s, zeta, inv_sqrt_m, seed):
    """``S J^T`` (s, n) for a sparse sign embedding ``S`` with ``zeta`` non-zeros
    ``±1/sqrt(zeta)`` per column, drawn for the non-zero rows ``(r, c)`` of ``J^T`` only
    (the other columns of ``S`` meet zeros). ``O(zeta K d)``."""
    np.random.seed(seed)
    n, d = X.shape
    SJ = np.zeros((s, n))
    scale = 1.0 / np.sqrt(zeta)
    for t in range(a.shape[0]):
        for c in range(d):
            for _ in range(zeta):
                h = np.random.randint(0, s)
                sg = scale if np.random.random() < 0.5 else -scale
                v = sg * a[t] * inv_sqrt_m
                for p in range(ptr[t], ptr[t + 1]):
                    i = inputs[p]
                    SJ[h, i] += v * X[i, c]
    return SJ


@numba.njit(cache=True)
def view_counts(uptr, uinp, n):
    """``C_ij = |S_i ∩ S_j|`` (n, n, exact integers in float64) from a neuron-major view
    (neuron ``u`` fires on the inputs ``uinp[uptr[u]:uptr[u+1]]``). ``O(sum_r c_r^2)``
    with ``c_r`` the inputs neuron r fires on."""
    C = np.zeros((n, n))
    for u in range(uptr.shape[0] - 1):
        for p in range(uptr[u], uptr[u + 1]):
            i = uinp[p]
            for q in range(uptr[u], uptr[u + 1]):
                C[i, uinp[q]] += 1.0
    return C


def view_gram_block(view: NeuronView, XXt: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The block ``G[idx, idx]`` of ``G = J J^T`` from the fired pairs of ``view``: what
    the iterative solvers' diagnostics read (``O(sum_r c_r^2 + n^2)``, outside the step)."""
    from .linalg import gram_from_counts

    C = view_counts(view.ptr, view.inputs, XXt.shape[0])
    return gram_from_counts(XXt, C, view.m)[np.ix_(idx, idx)]


def jt_u(view: NeuronView, X: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``J^T u`` on the rows of ``view`` (k, d)."""
    return _jt_u(view.a, view.ptr, view.inputs, X, np.asarray(u, dtype=np.float64), 1.0 / math.sqrt(view.m))


def j_v(view: NeuronView, X: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``J v`` for ``v`` given on the rows of ``view`` (k, d)."""
    return _j_v(view.a, view.ptr, view.inputs, X, np.asarray(V, dtype=np.float64), 1.0 / math.sqrt(view.m))


class Solve(GramSolve):
    """A :class:`GramSolve` with what an iterative solve did: ``iterations`` and the
    achieved ``relative_residual`` ``||G g - r|| / ||r||`` (0 for an exact solve, whose
    rounding is covered elsewhere), and, for ``sketch``, the condition number of the
    preconditioned system (computed when first read: ``O(k^3)``)."""

    __slots__ = ("iterations", "relative_residual", "_precond")

    def __init__(self, g, rank, method, *, iterations=0, relative_residual=0.0, block=None, spectrum=None,
                 precond=None):
        super().__init__(g, rank, method, spectrum=spectrum, block=block)
        self.iterations = int(iterations)
        self.relative_residual = float(relative_residual)
        self._precond = precond  # P (the preconditioner) until read, then the number

    def _fired_block(self):
        """The fired block of ``G`` (formed now if the step left a function for it)."""
        if callable(self._block):
            self._block = self._block()
        return self._block

    def _release(self):
        """Drop the block once both diagnostics that read it are computed."""
        if self._spectrum is not None and not isinstance(self._precond, np.ndarray):
            self._block = None

    def _spec(self):
        if self._spectrum is None:
            block = self._fired_block()
            if block is None or block.size == 0:
                self._spectrum = (0.0, 0.0, 0.0)
            else:  # an iterative solve has not proved the block definite: keep what is above the cutoff
                lam = np.linalg.eigvalsh(block)
                cutoff = lam.size * np.finfo(np.float64).eps * max(float(lam[-1]), 0.0)
                kept = lam[lam > cutoff]
                self._spectrum = (float(lam[-1]), float(kept[0]) if kept.size else 0.0, float(cutoff))
            self._release()
        return self._spectrum

    @property
    def condition(self) -> float:
        if self.rank == 0 or self.eig_min_kept == 0:
            return 1.0 if self.eig_max == 0 else float("inf")
        return self.eig_max / self.eig_min_kept

    @property
    def preconditioned_condition(self) -> float:
        """``cond(P^T G P)`` of a ``sketch`` solve (nan for the other solvers)."""
        if self._precond is None:
            return float("nan")
        if isinstance(self._precond, np.ndarray):
            P = self._precond
            lam = np.linalg.eigvalsh(P.T @ self._fired_block() @ P)
            self._precond = float(lam[-1] / lam[0]) if lam[0] > 0 else float("inf")
            self._release()
        return self._precond


class Solver:
    """Base: ``solve(trainer, G, r, fired)`` returns a :class:`Solve`. ``G`` is the Gram
    matrix from the intersection counts when the solver declares ``needs_gram`` (the
    exact solver), else None: the step then never forms the counts (``O(sum_r c_r^2)``)
    nor the ``n x n`` Gram, and the solve's diagnostic spectrum is computed from the
    step's fired pairs when first read, outside the step's time."""

    name = ""
    #: Whether :meth:`solve` needs the Gram matrix ``G`` formed from the counts.
    needs_gram = False

    def options(self) -> dict:
        return {}

    def solve(self, trainer, G, r, fired) -> Solve:
        raise NotImplementedError

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{self.name}({opts})"


class ExactSolver(Solver):
    name = "exact"
    needs_gram = True

    def solve(self, trainer, G, r, fired):
        sol = solve_gram(G, r, fired)
        out = Solve(sol.g, sol.rank, sol.method, spectrum=sol._spectrum, block=sol._block)
        return out


def _tolerance(tol) -> float:
    try:
        t = float(tol)
    except (TypeError, ValueError):
        raise ConfigError(f"solver tolerance must be a number in (0, 1), got {tol!r}.") from None
    if not 0 < t < 1:
        raise ConfigError(f"solver tolerance must be a number in (0, 1), got {tol!r}; the default is 1e-10.")
    return t


def _positive_int(name, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


class _Products:
    """``G v = J (J^T v)`` restricted to the fired inputs ``idx``, counting products."""

    def __init__(self, trainer, idx):
        self.view = trainer.neuron_view()
        self.X = trainer._X64_products()
        self.idx = idx
        self.n = self.X.shape[0]
        self.count = 0

    def G(self, v_k):
        v = np.zeros(self.n)
        v[self.idx] = v_k
        self.count += 1
        return j_v(self.view, self.X, jt_u(self.view, self.X, v))[self.idx]


#: An iterative solve whose achieved relative residual exceeds ``SHORT_FACTOR`` times its
#: tolerance (and 1e-8) is reported with a :class:`~sublin_bench.errors.SolverWarning`.
SHORT_FACTOR = 1e3


def _finish(name, trainer, G, r, fired, g_k, idx, products, iterations, tol=None, **extra) -> Solve:
    g = np.zeros(r.shape[0])
    g[idx] = g_k
    rk = r[idx]
    rn = float(np.linalg.norm(rk))
    res = float(np.linalg.norm(products.G(g_k) - rk)) / rn if rn > 0 else 0.0
    if tol is not None and not res <= max(SHORT_FACTOR * tol, 1e-8):
        warnings.warn(
            f"step {trainer.t}: the {name} solve stopped at relative residual {res:.2e} after {iterations} "
            f"iterations (tolerance {tol:g}); the step is taken with that g. "
            + ("cg assumes a non-singular Gram on the fired inputs: use the exact or sketch solver for this problem."
               if name == "cg" else "raise maxiter, or use the exact solver."),
            SolverWarning, stacklevel=4)
    return Solve(g, idx.size, name, iterations=iterations, relative_residual=res,
                 block=_diagnostic_block(trainer, G, idx, products.view), **extra)


def _diagnostic_block(trainer, G, idx, view):
    """The fired block of ``G`` for the diagnostics: cut from ``G`` when the step formed
    it, else a function forming it from the step's neuron view when first read (the view's
    arrays are never modified in place: an implementation's next step makes new ones)."""
    if G is not None:
        return G[np.ix_(idx, idx)]
    XXt = trainer._XXt
    return lambda: view_gram_block(view, XXt, idx)


class SketchSolver(Solver):
    """BPSW21's sketch-preconditioned iteration (module docstring).

    Parameters
    ----------
    tol : float
        Relative residual of the preconditioned CG (default 1e-10).
    gamma : float
        Sketch rows per fired input, ``s = ceil(gamma k)`` (default 4).
    zeta : int
        Non-zeros per column of the sparse sign embedding (default 8).
    maxiter : int
        Iteration limit (default 500); reaching it without the tolerance is reported in
        ``relative_residual``, never hidden.
    seed : int
        Seed of the sketch (default 0; each step draws from ``(seed, step)``).
    """

    name = "sketch"

    def __init__(self, tol=1e-10, gamma=4.0, zeta=8, maxiter=500, seed=0):
        self.tol = _tolerance(tol)
        try:
            self.gamma = float(gamma)
        except (TypeError, ValueError):
            raise ConfigError(f"gamma must be a number >= 1, got {gamma!r}.") from None
        if not (math.isfinite(self.gamma) and self.gamma >= 1):
            raise ConfigError(f"gamma must be a number >= 1, got {gamma!r}.")
        self.zeta = _positive_int("zeta", zeta)
        self.maxiter = _positive_int("maxiter", maxiter)
        self.seed = int(seed)

    def options(self):
        return {"tol": self.tol, "gamma": self.gamma, "zeta": self.zeta, "maxiter": self.maxiter, "seed": self.seed}

    def solve(self, trainer, G, r, fired):
        idx = np.flatnonzero(fired)
        k = idx.size
        if k == 0:
            return Solve(np.zeros(r.shape[0]), 0, self.name)
        pr = _Products(trainer, idx)
        v = pr.view
        s = max(int(math.ceil(self.gamma * k)), k + 1)
        seed = (self.seed * 1_000_003 + trainer.t) % (2**31 - 1)
        SJ = _sketch_jt(v.a, v.ptr, v.inputs, pr.X, s, min(self.zeta, s), 1.0 / math.sqrt(v.m), seed)[:, idx]
        R = scipy.linalg.qr(SJ, mode="r", check_finite=False)[0][:k]
        dR = np.abs(np.diagonal(R))
        if dR.size and dR.min() > 1e-10 * dR.max():
            P = scipy.linalg.solve_triangular(R, np.eye(k), check_finite=False)  # R^-1
        else:  # numerically rank deficient: the pseudo-inverse from the SVD
            _, sv, Vt = np.linalg.svd(SJ, full_matrices=False)
            keep = sv > k * np.finfo(float).eps * sv[0]
            P = Vt[keep].T / sv[keep]
        q = P.shape[1]
        A = LinearOperator((q, q), matvec=lambda h: P.T @ pr.G(P @ np.ravel(h)), dtype=np.float64)
        count = [0]
        h, info = cg(A, P.T @ r[idx], rtol=self.tol, atol=0.0, maxiter=self.maxiter,
                     callback=lambda _: count.__setitem__(0, count[0] + 1))
        return _finish(self.name, trainer, G, r, fired, P @ h, idx, pr, count[0], tol=self.tol, precond=P)


class CGSolver(Solver):
    """Matrix-free conjugate gradients on ``G g = r`` (module docstring).

    Parameters: ``tol`` (default 1e-10), ``maxiter`` (default 10000), ``jacobi``
    (default True: precondition with ``diag(G) = |S_i| / m``).
    """

    name = "cg"

    def __init__(self, tol=1e-10, maxiter=10_000, jacobi=True):
        self.tol = _tolerance(tol)
        self.maxiter = _positive_int("maxiter", maxiter)
        self.jacobi = bool(jacobi)

    def options(self):
        return {"tol": self.tol, "maxiter": self.maxiter, "jacobi": self.jacobi}

    def solve(self, trainer, G, r, fired):
        idx = np.flatnonzero(fired)
        if idx.size == 0:
            return Solve(np.zeros(r.shape[0]), 0, self.name)
        pr = _Products(trainer, idx)
        k = idx.size
        A = LinearOperator((k, k), matvec=lambda v: pr.G(np.ravel(v)), dtype=np.float64)
        M = None
        if self.jacobi:
            sizes = np.bincount(pr.view.inputs, minlength=pr.n)[idx]  # |S_i|
            inv_diag = pr.view.m / (sizes * np.einsum("ij,ij->i", pr.X[idx], pr.X[idx]))  # 1 / G_ii
            M = LinearOperator((k, k), matvec=lambda v: inv_diag * np.ravel(v), dtype=np.float64)
        count = [0]
        g_k, info = cg(A, r[idx], rtol=self.tol, atol=0.0, maxiter=self.maxiter, M=M,
                       callback=lambda _: count.__setitem__(0, count[0] + 1))
        return _finish(self.name, trainer, G, r, fired, g_k, idx, pr, count[0], tol=self.tol)


class GDSolver(Solver):
    """Gradient descent: ``g = rate r / lambda_max`` (module docstring).

    Parameters: ``rate`` in (0, 2) (default 1.0), ``power_iterations`` (default 20).
    """

    name = "gd"

    def __init__(self, rate=1.0, power_iterations=20):
        try:
            self.rate = float(rate)
        except (TypeError, ValueError):
            raise ConfigError(f"rate must be a number in (0, 2), got {rate!r}.") from None
        if not 0 < self.rate < 2:
            raise ConfigError(f"rate must be a number in (0, 2), got {rate!r}: gradient descent with step "
                              "rate / lambda_max diverges from 2 on.")
        self.power_iterations = _positive_int("power_iterations", power_iterations)

    def options(self):
        return {"rate": self.rate, "power_iterations": self.power_iterations}

    def solve(self, trainer, G, r, fired):
        idx = np.flatnonzero(fired)
        if idx.size == 0:
            return Solve(np.zeros(r.shape[0]), 0, self.name)
        pr = _Products(trainer, idx)
        v = np.random.default_rng(12345).standard_normal(idx.size)
        lam = 0.0
        for _ in range(self.power_iterations):
            w = pr.G(v / np.linalg.norm(v))
            lam = float(np.linalg.norm(w))
            if lam == 0:
                break
            v = w
        if lam == 0:
            return Solve(np.zeros(r.shape[0]), 0, self.name, iterations=self.power_iterations)
        g_k = (self.rate / lam) * r[idx]
        return _finish(self.name, trainer, G, r, fired, g_k, idx, pr, self.power_iterations)


_CLASSES = {"exact": ExactSolver, "sketch": SketchSolver, "cg": CGSolver, "gd": GDSolver}


def parse_solver(text: str) -> tuple[str, dict]:
    """A solver written as ``name`` or ``name:key=value,key=value`` (``gd:rate=1.5``,
    ``sketch:gamma=8,tol=1e-8``): its name and options, numbers parsed, checked by building
    it. Raises ConfigError naming the bad part."""
    name, _, rest = str(text).partition(":")
    options = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"solver {text!r}: options are key=value, separated by commas (gd:rate=1.5).")
        value = value.strip()
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
        else:
            value = {"true": True, "false": False}.get(value.lower(), value)
        options[key.strip()] = value
    make_solver(name.strip(), **options)
    return name.strip(), options


def make_solver(solver="exact", **options) -> Solver:
    """A solver from its name (one of :data:`SOLVERS`) and options, or a :class:`Solver`
    instance passed through."""
    if isinstance(solver, Solver):
        if options:
            raise ConfigError("options go to make_solver(name, ...), not with a Solver instance.")
        return solver
    if solver not in _CLASSES:
        raise ConfigError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}.")
    try:
        return _CLASSES[solver](**options)
    except TypeError as exc:
        raise ConfigError(f"bad option for solver {solver!r}: {exc}") from None
