"""The shared mathematics of one Gauss-Newton iteration (README.md, "The mathematics in a few lines").

Every implementation computes *how* it likes, but *what* it computes is defined here, once:
the Gram matrix from intersection counts, the minimum-norm least-squares solve, and the
active-set bookkeeping helpers. Implementations import these; they never copy them.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "input_gram",
    "gram_from_counts",
    "solve_gram",
    "GramSolve",
    "CHOLESKY_MAX_CONDITION",
    "csr_from_mask",
    "indptr_from_counts",
    "rows_of",
    "solve_memory_estimate",
]

#: n x n float64 arrays alive at once during a step, counted generously: X X^T, the
#: counts, the Gram matrix, the fired block gathered for the solve, its factor (or the
#: eigenvectors), its inverse or the eigh work space, and the block a StepInfo keeps.
_NN_ARRAYS = 10


def solve_memory_estimate(n: int) -> int:
    """Bytes of the ``n x n`` arrays one step holds (the Gram matrix, its counts and the
    solve's work space), beyond what an implementation allocates itself.

    Examples
    --------
    >>> solve_memory_estimate(20000) / 2**30 > 24   # n = 20000 does not fit in 24 GiB
    True
    """
    return _NN_ARRAYS * 8 * int(n) * int(n)


def input_gram(X: np.ndarray) -> np.ndarray:
    """``X X^T`` in float64 (n, n)."""
    X64 = np.asarray(X, dtype=np.float64)
    return X64 @ X64.T


def gram_from_counts(XXt: np.ndarray, counts: np.ndarray, m: int) -> np.ndarray:
    """The Gram matrix ``G = J J^T`` in closed form.

    ``G_ij = <x_i, x_j> |S_i ∩ S_j| / m``. ``counts`` holds the integers
    ``|S_i ∩ S_j|`` (any numeric dtype holding exact integers).

    Notes
    -----
    ``O(n^2)``. Two implementations with equal active sets get bit-identical Gram
    matrices from this function, which is why the solve below sees the same matrix.
    """
    return XXt * (np.asarray(counts, dtype=np.float64) / float(m))


#: The fast path's limit: :func:`solve_gram` uses Cholesky when it can prove the fired
#: block's condition number is at most this. See :func:`solve_gram`'s notes.
CHOLESKY_MAX_CONDITION = 1e4
#: Fired blocks larger than this are solved with LAPACK through scipy (blocked, threaded
#: BLAS 3) instead of the compiled small-block kernels, whose scalar loops cost O(k^3)
#: at a few hundred Mflop/s: 0.78 s against about 0.02 s at k = 1024.
LAPACK_FROM = 96


class GramSolve:
    """Result of :func:`solve_gram`: the solution and what the solve saw.

    ``g``, ``rank`` and ``method`` (``"cholesky"`` or ``"eigh"``) are set by the solve.
    The spectrum (``eig_max``, ``eig_min_kept``, ``cutoff``, ``condition``) is a
    diagnostic the iteration does not need: after a Cholesky solve it is computed from the
    fired block (``eigvalsh``, ``O(k^3)``) the first time one of them is read.
    """

    __slots__ = ("g", "rank", "method", "_block", "_spectrum")

    def __init__(self, g, rank, method, spectrum=None, block=None):
        self.g = g
        self.rank = rank
        self.method = method
        self._spectrum = spectrum  # (eig_max, eig_min_kept, cutoff), or None until read
        self._block = block

    def _spec(self):
        if self._spectrum is None:
            lam = np.linalg.eigvalsh(self._block)
            eig_max = float(lam[-1])
            self._spectrum = (eig_max, float(lam[0]), float(_cutoff(lam.size, eig_max)))
            self._block = None
        return self._spectrum

    @property
    def eig_max(self) -> float:
        """Largest eigenvalue of the fired block (0 for an empty one)."""
        return self._spec()[0]

    @property
    def eig_min_kept(self) -> float:
        """Smallest eigenvalue above ``cutoff`` (0 when none is kept)."""
        return self._spec()[1]

    @property
    def cutoff(self) -> float:
        """``k eps eig_max``: eigenvalues at or below it count as zero."""
        return self._spec()[2]

    @property
    def condition(self) -> float:
        """Effective condition number ``eig_max / eig_min_kept`` (1 for an empty system)."""
        if self.rank == 0:
            return 1.0
        return self.eig_max / self.eig_min_kept


@numba.njit(cache=True)
def _cutoff(k, eig_max):
    """The pseudo-inverse's cutoff for a k x k block: eigenvalues at or below it count
    as zero (``k eps eig_max``, as in ``numpy.linalg.lstsq``)."""
    return k * np.finfo(np.float64).eps * eig_max


@numba.njit(cache=True)
def _gather(G, r, fired):
    """The fired block of ``G`` and ``r``, and the fired indices."""
    idx = np.flatnonzero(fired)
    k = idx.size
    Gs = np.empty((k, k))
    rs = np.empty(k)
    for a in range(k):
        rs[a] = r[idx[a]]
        for c in range(k):
            Gs[a, c] = G[idx[a], idx[c]]
    return Gs, rs, idx


@numba.njit(cache=True)
def _cholesky_kernel(G, r, fired, max_condition):
    """Cholesky solve of the fired block when its condition number provably is at most
    ``max_condition``; returns ``(g, block, ok)``, with ``ok`` False when it is not
    proven (the caller then uses :func:`_eigh_kernel`)."""
    n = r.shape[0]
    g = np.zeros(n)
    Gs, rs, idx = _gather(G, r, fired)
    k = idx.size
    if k == 0:
        return g, Gs, False
    L = np.linalg.cholesky(Gs)  # LinAlgError when not numerically positive definite
    # M = L^-1 by forward substitution; then kappa_2(Gs) <= ||Gs||_F ||M||_F^2
    M = np.zeros((k, k))
    for j in range(k):
        M[j, j] = 1.0 / L[j, j]
        for i in range(j + 1, k):
            s = 0.0
            for p in range(j, i):
                s += L[i, p] * M[p, j]
            M[i, j] = -s / L[i, i]
    bound = np.sqrt(np.sum(Gs * Gs)) * np.sum(M * M)
    if not bound <= max_condition:
        return g, Gs, False
    x = np.empty(k)  # L y = r, then L^T x = y
    for i in range(k):
        s = rs[i]
        for p in range(i):
            s -= L[i, p] * x[p]
        x[i] = s / L[i, i]
    for i in range(k - 1, -1, -1):
        s = x[i]
        for p in range(i + 1, k):
            s -= L[p, i] * x[p]
        x[i] = s / L[i, i]
    for a in range(k):
        g[idx[a]] = x[a]
    return g, Gs, True


@numba.njit(cache=True)
def _eigh_kernel(G, r, fired):
    """The pseudo-inverse solve; returns ``(g, rank, eig_max, eig_min_kept, cutoff)``."""
    n = r.shape[0]
    g = np.zeros(n)
    Gs, rs, idx = _gather(G, r, fired)
    k = idx.size
    if k == 0:
        return g, 0, 0.0, 0.0, 0.0
    lam, V = np.linalg.eigh(Gs)
    eig_max = lam[k - 1]
    cutoff = _cutoff(k, eig_max)
    c = V.T @ rs
    rank = 0
    eig_min_kept = 0.0
    for j in range(k):
        if lam[j] > cutoff:
            if rank == 0:
                eig_min_kept = lam[j]
            rank += 1
            c[j] /= lam[j]
        else:
            c[j] = 0.0
    if rank == 0:
        return g, 0, eig_max, 0.0, cutoff
    x = V @ c
    for a in range(k):
        g[idx[a]] = x[a]
    return g, rank, eig_max, eig_min_kept, cutoff


def solve_gram(G: np.ndarray, r: np.ndarray, fired: np.ndarray | None = None) -> GramSolve:
    """Minimum-norm least-squares solution of ``G g = r``.

    Parameters
    ----------
    G : ndarray (n, n)
        Symmetric positive semidefinite Gram matrix.
    r : ndarray (n,)
        Residual ``f - y``.
    fired : ndarray (n,) of bool, optional
        Inputs that fire at least one neuron. The others have a zero row and column in
        ``G`` and get ``g_i = 0`` exactly. Defaults to ``diag(G) > 0``.

    Returns
    -------
    GramSolve
        ``g`` (float64, (n,)), the rank, the method used and the spectrum.

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``G`` holds NaN or infinity.

    Notes
    -----
    ``O(n^3)``. The pseudo-inverse solution on the fired block (size ``k``), with
    eigenvalues at or below ``cutoff = k * eps * eig_max`` treated as zero (as in
    ``numpy.linalg.lstsq``): the minimum-norm least-squares solution the design asks for.
    Two compiled paths compute it:

    * **Cholesky** (the usual case). ``L L^T = G_block``, ``M = L^-1``, and the bound
      ``kappa_2 <= ||G_block||_F ||M||_F^2``. When the bound is at most
      :data:`CHOLESKY_MAX_CONDITION` (1e4), every eigenvalue is far above the cutoff
      (which needs ``kappa > 1 / (k eps)``, over 1e13 for ``k <= 32``), so the
      pseudo-inverse is the inverse, ``g`` comes from the two triangular solves with
      ``L``, and the rank is ``k``. About 16 us at n = 32 on a 2-core machine.
    * **eigh** otherwise (not positive definite, or the bound above 1e4):
      ``V diag(1/lam_kept) V^T r``, about 90 us at n = 32.

    Fired blocks of more than :data:`LAPACK_FROM` rows go through LAPACK instead
    (:func:`_solve_lapack`: the same two paths, with a tighter bound for the choice).

    Both are backward stable, so their results differ by about ``k kappa eps`` relative:
    below 1e-10 under the limit. The limit keeps it so: at a condition number of 1.7e5 a
    Cholesky solve moved a 3-step trajectory 1.9e-9 (relative) away from an explicit
    pseudo-inverse, where eigh, which rounds like the reference, stayed within 1e-9. The
    Gram matrices of the benchmarks (n = d = 32) have condition numbers below 20.

    Deterministic for a given matrix, so implementations with equal Gram matrices get
    equal solutions.

    Examples
    --------
    >>> G = np.array([[4.0, 0.0], [0.0, 0.0]])  # input 1 fires nothing
    >>> solve_gram(G, np.array([8.0, 1.0])).g.tolist()
    [2.0, 0.0]
    >>> sol = solve_gram(np.array([[4.0, 0.0], [0.0, 1.0]]), np.array([8.0, 1.0]))
    >>> sol.method, sol.g.tolist(), sol.condition
    ('cholesky', [2.0, 1.0], 4.0)
    """
    G = np.ascontiguousarray(G, dtype=np.float64)
    r = np.ascontiguousarray(r, dtype=np.float64)
    if fired is None:
        fired = np.diagonal(G) > 0
    fired = np.ascontiguousarray(fired, dtype=np.bool_)
    if int(np.count_nonzero(fired)) > LAPACK_FROM:
        return _solve_lapack(G, r, fired)
    try:
        g, block, ok = _cholesky_kernel(G, r, fired, CHOLESKY_MAX_CONDITION)
    except np.linalg.LinAlgError:
        if not np.isfinite(G).all():
            raise
        ok = False  # not numerically positive definite
    if ok:
        return GramSolve(g, block.shape[0], "cholesky", block=block)
    g, rank, eig_max, eig_min_kept, cutoff = _eigh_kernel(G, r, fired)
    return GramSolve(g, int(rank), "eigh", spectrum=(float(eig_max), float(eig_min_kept), float(cutoff)))


def _solve_lapack(G, r, fired) -> GramSolve:
    """:func:`solve_gram` for a large fired block, with LAPACK: Cholesky ``L L^T = G_b``
    (``potrf``), ``M = L^-1`` (``trtri``), and the bound
    ``kappa_2(G_b) <= ||G_b||_inf ||M||_1 ||M||_inf`` (``||A||_2 <= ||A||_inf`` for symmetric
    A, and ``||G_b^-1||_2 = ||M||_2^2 <= ||M||_1 ||M||_inf``): tighter than the Frobenius
    bound of the small-block kernel, which overestimates by up to ``k^1.5`` and would send
    every block above a few hundred rows to ``eigh``. Within
    :data:`CHOLESKY_MAX_CONDITION`, ``g`` from the triangular solves; otherwise ``eigh``
    (``syevd``) with the pseudo-inverse cutoff. ``O(k^3)`` in BLAS 3 either way."""
    import scipy.linalg

    idx = np.flatnonzero(fired)
    k = idx.size
    Gs = G[np.ix_(idx, idx)]
    rs = r[idx]
    g = np.zeros(r.shape[0])
    try:
        L = scipy.linalg.cholesky(Gs, lower=True, check_finite=False)
        M, info = scipy.linalg.lapack.dtrtri(L, lower=1)
        ok = info == 0 and np.isfinite(M).all()
    except np.linalg.LinAlgError:
        ok = False
    if ok:
        bound = np.abs(Gs).sum(axis=1).max() * np.abs(M).sum(axis=0).max() * np.abs(M).sum(axis=1).max()
        if bound <= CHOLESKY_MAX_CONDITION:
            g[idx] = scipy.linalg.cho_solve((L, True), rs, check_finite=False)
            return GramSolve(g, k, "cholesky", block=Gs)
    if not np.isfinite(Gs).all():
        raise np.linalg.LinAlgError("the Gram matrix holds NaN or infinity")
    lam, V = scipy.linalg.eigh(Gs, driver="evd", check_finite=False)
    eig_max = float(lam[-1])
    cutoff = float(_cutoff(k, eig_max))
    keep = lam > cutoff
    rank = int(keep.sum())
    if rank:
        c = V.T @ rs
        g[idx] = V[:, keep] @ (c[keep] / lam[keep])
    return GramSolve(g, rank, "eigh", spectrum=(eig_max, float(lam[keep][0]) if rank else 0.0, cutoff))


def indptr_from_counts(counts) -> np.ndarray:
    """CSR row pointers (int64, ``len(counts) + 1``) for rows of the given sizes."""
    counts = np.asarray(counts)
    indptr = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr


def rows_of(indptr) -> np.ndarray:
    """The row of every entry of a CSR structure with row pointers ``indptr`` (int64)."""
    indptr = np.asarray(indptr)
    return np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))


def csr_from_mask(mask_T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR of the rows of a boolean (n, m) matrix: row i lists the sorted ``r`` with
    ``mask_T[i, r]``. ``O(n m)``; for dense implementations only."""
    rows, cols = np.nonzero(mask_T)
    return indptr_from_counts(np.bincount(rows, minlength=mask_T.shape[0])), cols.astype(np.int64)
