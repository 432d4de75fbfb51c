"""The shared mathematics of one Gauss-Newton iteration (DESIGN.md section 1).

Every implementation computes *how* it likes, but *what* it computes is defined here, once:
the Gram matrix from intersection counts, the minimum-norm least-squares solve, and the
active-set bookkeeping helpers. Implementations import these; they never copy them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "input_gram",
    "gram_from_counts",
    "solve_gram",
    "GramSolve",
    "csr_from_mask",
    "indptr_from_counts",
]


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


class GramSolve:
    """Result of :func:`solve_gram`: the solution and what the solve saw."""

    __slots__ = ("g", "rank", "eig_max", "eig_min_kept", "cutoff")

    def __init__(self, g, rank, eig_max, eig_min_kept, cutoff):
        self.g = g
        self.rank = rank
        self.eig_max = eig_max
        self.eig_min_kept = eig_min_kept
        self.cutoff = cutoff

    @property
    def condition(self) -> float:
        """Effective condition number ``eig_max / eig_min_kept`` (1 for an empty system)."""
        if self.rank == 0:
            return 1.0
        return self.eig_max / self.eig_min_kept


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
        ``g`` (float64, (n,)) and the spectrum seen by the solve.

    Notes
    -----
    ``O(n^3)``: a symmetric eigendecomposition of the fired block, with eigenvalues at or
    below ``cutoff = k * eps * eig_max`` (``k`` the block size, as in ``numpy.linalg.lstsq``)
    treated as zero. This is the pseudo-inverse solution, which is the minimum-norm
    least-squares solution the design asks for; it is deterministic for a given matrix.

    Examples
    --------
    >>> G = np.array([[2.0, 0.0], [0.0, 0.0]])
    >>> solve_gram(G, np.array([4.0, 1.0])).g.tolist()
    [2.0, 0.0]
    """
    G = np.asarray(G, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    n = r.shape[0]
    if fired is None:
        fired = np.diagonal(G) > 0
    idx = np.flatnonzero(fired)
    g = np.zeros(n, dtype=np.float64)
    if idx.size == 0:
        return GramSolve(g, 0, 0.0, 0.0, 0.0)
    Gs = G[np.ix_(idx, idx)]
    lam, V = np.linalg.eigh(Gs)
    eig_max = float(lam[-1])
    cutoff = idx.size * np.finfo(np.float64).eps * eig_max
    keep = lam > cutoff
    if not keep.any():
        return GramSolve(g, 0, eig_max, 0.0, cutoff)
    Vk = V[:, keep]
    g[idx] = Vk @ ((Vk.T @ r[idx]) / lam[keep])
    return GramSolve(g, int(keep.sum()), eig_max, float(lam[keep][0]), float(cutoff))


def indptr_from_counts(counts) -> np.ndarray:
    """CSR row pointers (int64, ``len(counts) + 1``) for rows of the given sizes."""
    counts = np.asarray(counts)
    indptr = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr


def csr_from_mask(mask_T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR of the rows of a boolean (n, m) matrix: row i lists the sorted ``r`` with
    ``mask_T[i, r]``. ``O(n m)``; for dense implementations only."""
    rows, cols = np.nonzero(mask_T)
    return indptr_from_counts(np.bincount(rows, minlength=mask_T.shape[0])), cols.astype(np.int64)
