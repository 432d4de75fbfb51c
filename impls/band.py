"""``band``: an exact index that keeps, per input, only the neurons near the threshold.

Idea
----
Each neuron r has an *anchor* ``wbar_r``, a copy of its weight taken when it was last
anchored. Input i keeps the candidate list ``C_i = {r : <wbar_r, x_i> > b - D}``. Since
``||x_i|| = 1``, ``|<w_r, x_i> - <wbar_r, x_i>| <= ||w_r - wbar_r||``, so a neuron outside
``C_i`` cannot fire on input i while its *drift* ``||w_r - wbar_r||`` stays below ``D``.
A neuron whose drift reaches ``D`` is re-anchored: its anchor becomes its current weight
and its candidacy is recomputed against every input.

Invariant (what makes it exact)
-------------------------------
For every r and i: ``r not in C_i`` implies ``<wbar_r, x_i> <= b - D`` (as evaluated) and
``||w_r - wbar_r|| <= D - 2 e_r``, with ``e_r = 2 (d + 2) u (||w_r|| + D)`` a bound on the
rounding of one evaluation of an inner product. Together they give
``<w_r, x_i> <= b`` for every floating-point evaluation, so ``S_i ⊆ C_i`` always and
``S_i = {r in C_i : z_ri > b}`` exactly. Every step re-checks the drift of every moved
neuron (the only ones whose drift changed), so the invariant holds after every step.

Margin
------
``D = min(0.5, 0.5 / b)``: the candidate lists are then about
``Q(b - D) / Q(b) ≈ exp(b D) = e^0.5 ≈ 1.65`` times the fired sets for the thresholds of
interest, while a neuron must move ``D`` (much more than a lazy-regime step) before it is
re-anchored. ``margin=`` overrides it.

Per-iteration work
------------------
The drifts of the moved neurons (``|U| d``), one pass over the candidate lists
(``sum_i |C_i|``), an exact re-evaluation (``d`` flops) of each candidate whose neuron
moved, and for re-anchored neurons their pre-activations on every input (a
``|R| x d x n`` product) and ``n`` candidacy tests each. The drift check and the
re-evaluation prefetch the rows of W (and of the anchors) a few neurons ahead
(:mod:`impls._prefetch`), which makes the step about 1.6x faster at m = 2^20,
alpha = 0.24, where nearly every one of those reads misses the cache. No array of size
m is allocated or scanned per step; the flag array ``moved`` (m bytes, allocated once at
build) is set and cleared only at the moved rows. The neurons are stored firing-first
(:mod:`impls._sparse`), so the rows a step reads and writes are packed together: against
``neuron_order="given"`` at m = 2^16 / 2^18 / 2^20, 1.31x / 1.54x / 1.53x faster at
alpha = 0.24 and 1.13x / 1.17x / 2.36x at alpha = 0.5.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy.special import ndtr

from sublin_bench.impls._prefetch import prefetch_row
from sublin_bench.impls._sparse import AHEAD, SparseTrainer
from sublin_bench.impls.dense import block_rows
from sublin_bench.errors import ConfigError
from sublin_bench.generator import default_margin
from sublin_bench.linalg import indptr_from_counts

#: Relative safety on the drift test, covering the rounding of the drift norm itself.
_DRIFT_SAFETY = 1e-9


def resolve_margin(margin, b: float) -> float:
    """The margin to use: ``margin`` validated, or :func:`default_margin` of ``b``."""
    D = default_margin(b) if margin is None else margin
    try:
        D = float(D)
    except (TypeError, ValueError):
        raise ConfigError(f"margin must be a positive number, got {margin!r}.") from None
    if not (math.isfinite(D) and D > 0):
        raise ConfigError(f"margin must be a finite number > 0, got {margin!r}.")
    return D


@numba.njit(cache=True)
def drift_check(W, anchor, U, D, u):
    """The moved rows whose drift ``||w_r - wbar_r||`` reached the re-anchoring threshold
    ``D - 2 e_r`` (see the module docstring), ascending like ``U``. ``O(|U| d)``."""
    d = W.shape[1]
    out = np.empty(U.shape[0], dtype=np.int64)
    nr = 0
    for t in range(U.shape[0]):
        if t + AHEAD < U.shape[0]:
            prefetch_row(W, U[t + AHEAD])
            prefetch_row(anchor, U[t + AHEAD])
        r = U[t]
        dr = 0.0
        nw = 0.0
        na = 0.0
        for c in range(d):
            w = np.float64(W[r, c])
            v = np.float64(anchor[r, c])
            dr += (w - v) * (w - v)
            nw += w * w
            na += v * v
        e = 2.0 * (d + 2) * u * (np.sqrt(max(nw, na)) + D)
        if np.sqrt(dr) > (D - 2 * e) * (1 - _DRIFT_SAFETY):
            out[nr] = r
            nr += 1
    return out[:nr]


@numba.njit(cache=True, parallel=True)
def preactivations(W, R, XT):
    """The pre-activations of the rows ``R`` on every input, ``Z[t, i] = <w_R[t], x_i>``
    (float64, summed over ``c`` ascending like every other evaluation here; the loop over
    inputs is innermost so that it vectorises), in parallel over rows. ``O(|R| d n)``."""
    d, n = XT.shape
    Z = np.zeros((R.shape[0], n))
    for t in numba.prange(R.shape[0]):
        if t + AHEAD < R.shape[0]:
            prefetch_row(W, R[t + AHEAD])
        r = R[t]
        for c in range(d):
            w = W[r, c]
            for i in range(n):
                Z[t, i] += w * XT[c, i]
    return Z


@numba.njit(cache=True)
def reanchor(W, anchor, R, XT):
    """Anchor the rows ``R`` at their current weights; return their
    :func:`preactivations`."""
    for r in R:
        anchor[r, :] = W[r, :]
    return preactivations(W, R, XT)


@numba.njit(cache=True)
def band_refresh(cptr, cidx, cz, moved, U, W, X, R, Zbar_R, cand_thr, b):
    """Merge the re-anchored neurons ``R`` into the candidate lists, re-evaluate the
    candidates whose neuron moved (the rows ``U``, flagged in ``moved`` for the duration
    of the call; ``d`` flops each) and extract the fired sets. Returns the new candidate
    lists ``(ptr, idx, z)``, the fired sets ``(ptr, idx, z)`` and the number of
    re-evaluations."""
    n = cptr.shape[0] - 1
    d = W.shape[1]
    nR = R.shape[0]
    cap = cidx.shape[0] + n * nR
    out_ptr = np.empty(n + 1, dtype=np.int64)
    out_idx = np.empty(cap, dtype=np.int64)
    out_z = np.empty(cap, dtype=np.float64)
    f_ptr = np.empty(n + 1, dtype=np.int64)
    f_idx = np.empty(cap, dtype=np.int64)
    f_z = np.empty(cap, dtype=np.float64)
    for r in U:
        moved[r] = True
    q = 0
    k = 0
    ev = 0
    for i in range(n):
        out_ptr[i] = q
        f_ptr[i] = k
        a = cptr[i]
        ae = cptr[i + 1]
        t = 0
        while a < ae or t < nR:
            if t < nR and (a >= ae or R[t] <= cidx[a]):
                r = R[t]
                if a < ae and cidx[a] == r:
                    a += 1
                z = np.float64(Zbar_R[t, i])
                t += 1
                if not z > cand_thr:
                    continue
            else:
                if a + AHEAD < ae and moved[cidx[a + AHEAD]]:
                    prefetch_row(W, cidx[a + AHEAD])
                r = cidx[a]
                if moved[r]:
                    z = 0.0
                    for c in range(d):
                        z += W[r, c] * X[i, c]
                    ev += 1
                else:
                    z = cz[a]
                a += 1
            out_idx[q] = r
            out_z[q] = z
            q += 1
            if z > b:
                f_idx[k] = r
                f_z[k] = z
                k += 1
    out_ptr[n] = q
    f_ptr[n] = k
    for r in U:
        moved[r] = False
    return out_ptr, out_idx[:q], out_z[:q], f_ptr, f_idx[:k].copy(), f_z[:k].copy(), ev


class BandTrainer(SparseTrainer):
    """Candidate lists within a margin ``D`` of the threshold, measured from anchors.

    Parameters
    ----------
    margin : float, optional
        The margin ``D > 0``; defaults to :func:`default_margin` of ``b``.
    neuron_order : {"firing", "given"}
        How the neurons are stored (see :mod:`impls._sparse`): the ones firing on the
        most inputs first (default), or the problem's order.
    """

    name = "band"

    def __init__(self, problem, *, step_size=1.0, margin=None, neuron_order="firing"):
        self.margin = resolve_margin(margin, problem.b)
        super().__init__(problem, step_size=step_size, neuron_order=neuron_order)

    @classmethod
    def memory_estimate(cls, spec, margin=None) -> int:
        b = spec.threshold
        cand = spec.m * spec.n * float(ndtr(resolve_margin(margin, b) - b))  # expected sum_i |C_i|
        return int(
            2 * spec.m * spec.d * spec.itemsize  # W and anchors
            + spec.m  # moved flags
            + 10 * spec.m  # neuron order and its sort keys
            + 4 * 16 * cand  # candidate lists (idx, z), old and new, plus build triples
            + block_rows(spec) * (spec.d + 3 * spec.n) * 8
        )

    def _build(self):
        spec = self.problem.spec
        m, n = self._W.shape[0], spec.n  # the stored neurons (all m, or band-implicit's candidates)
        b, D = self.problem.b, self.margin
        self._anchor = self._W.copy()
        self._moved = np.zeros(m, dtype=np.bool_)
        ii, rr, zz = [np.empty(0, np.int64)], [np.empty(0, np.int64)], [np.empty(0)]  # no stored rows: empty
        rows = block_rows(spec)
        for s in range(0, m, rows):
            Z = self._W[s : s + rows] @ self._XT
            i, r = np.nonzero((Z > b - D).T)
            ii.append(i)
            rr.append(r + s)
            zz.append(Z[r, i].astype(np.float64))
        i, r, z = (np.concatenate(v) for v in (ii, rr, zz))
        order = np.argsort(i, kind="stable")  # blocks are in neuron order already
        self._cidx = r[order].astype(np.int64)
        self._cz = z[order]
        self._cptr = indptr_from_counts(np.bincount(i, minlength=n))
        fired = self._cz > b
        fptr = indptr_from_counts(np.bincount(i[order][fired], minlength=n))
        work = {"build_inner_products": m * n, "candidates": int(self._cidx.size)}
        return fptr, self._cidx[fired], self._cz[fired], work

    def _refresh(self, g, coef):
        n = self.problem.n
        b, D = self.problem.b, self.margin
        U = self._U
        R = drift_check(self._W, self._anchor, U, D, self._unit_roundoff)
        Zbar_R = reanchor(self._W, self._anchor, R, self._XT)
        self._cptr, self._cidx, self._cz, f_ptr, f_idx, f_z, ev = band_refresh(
            self._cptr, self._cidx, self._cz, self._moved, U, self._W, self._X, R, Zbar_R, float(b - D), float(b)
        )
        q = int(self._cidx.size)
        work = {
            "candidates_scanned": q,
            "candidates_evaluated": int(ev),
            "neurons_reanchored": int(R.size),
            "work": q + int(ev) + int(U.size) + int(R.size) * n,
        }
        return f_ptr, f_idx, f_z, work

    @property
    def candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """The candidate lists ``C_i`` as CSR, in the problem's neuron order (for inspection
        and tests)."""
        return self._cptr.copy(), self._given_indices(self._cptr, self._cidx)
