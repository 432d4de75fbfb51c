"""``band-implicit``: the band index kept neuron by neuron, over the neurons that fire.

Only firing neurons ever move, and a neuron that does not move keeps its pre-activations:
a neuron that fires on no input at ``W_t`` is left unchanged by the step, so it fires on
no input at ``W_{t+1}`` either, and never again. The set ``A_t`` of firing neurons can
only shrink, ``A_{t+1} ⊆ A_t ⊆ A_0``, whatever solver computes ``g``. ``band-implicit``
therefore stores the rows of ``A_0`` only (``m P(max_i <w_r, x_i> > b)``, about
``m n Q(b)`` neurons: none of the other ``m d`` numbers is ever held), and everything it
keeps is indexed by neuron: for each ``r`` in ``A_t`` its fired inputs ``S(r)`` with
their pre-activations, its *candidate* inputs ``C(r) ⊇ S(r)`` and a bound on its drift.
A neuron leaves the state for good at the step where its fired set becomes empty.

Invariant (``band``'s, with a drift bound instead of an anchor)
----------------------------------------------------------------
``band`` (see :mod:`impls.band`) keeps for each neuron an anchor ``wbar_r`` and the inputs
``C(r) = {i : <wbar_r, x_i> > b - D}``; an input outside ``C(r)`` cannot fire while
``||w_r - wbar_r|| <= D - 2 e_r`` (``e_r = 2 (d + 2) u (||w_r|| + D)``). Here the anchor
itself is not stored: every step adds to ``delta_r`` an upper bound on the norm of the
stored change of ``w_r``, ``(||t|| + 1.01 u ||w_r'||) (1 + 1e-9)`` for the computed
increment ``t`` (the rounding of ``w + t`` to the working precision moves each coordinate
by at most ``u |w'_c|``; the factor covers the float64 rounding of the norms and of the
running sum for up to ~10^7 steps), so ``||w_r - wbar_r|| <= delta_r`` by the triangle
inequality. When ``delta_r`` reaches ``D - 2 e_r`` the neuron is re-anchored: its
pre-activations on every input are evaluated, ``C(r)`` recomputed, ``delta_r = 0``.
Hence ``S(r) = {i in C(r) : z_ri > b}`` exactly, with ``z_ri`` evaluated as in ``band``
(float64, summed over ``c`` ascending). The bound is at least the true drift, so a neuron
is re-anchored no later than in ``band``; in the lazy regime the steps of one neuron
point nearly the same way and the two differ little.

Per-iteration work
------------------
For each ``r`` in ``A_t``, in one pass (numba ``prange`` over blocks of neurons, on
every thread numba has): its update (``|S(r)| d``), its drift bound (``d``) and the
re-evaluation of its candidates (``|C(r)| d``); then ``n d`` for each re-anchored neuron
and one pass that writes the state of ``A_{t+1}``. Nothing else: no scan of candidate
lists of neurons that did not move, no anchor reads, no sort (the state is already
neuron-major, which is what the counts ``|S_i ∩ S_j|`` and the products ``J v``,
``J^T u`` read). The rows of ``A_t`` are stored contiguously and visited in storage
order. Counters: ``neurons_moved``, ``candidates_evaluated``, ``neurons_reanchored``,
``neurons_retired`` (left ``A_t`` this step) and ``work``.

Build
-----
* From a *sampled* problem (``ProblemSpec(init="sampled")``) the build is the sampling
  itself: the problem holds exactly the neurons with ``max_i <w_r, x_i> > t0 = b - D0``
  (:mod:`sublin_bench.generator`), a superset of ``A_0`` for any margin, so the build
  costs ``O(m n Q(t0) n d)``, sublinear in m.
* From a *plain* problem it streams over the generator's blocks of ``W0`` (regenerated
  from the seed, or cut from ``problem.W0`` where that is already in memory), one BLAS
  product per block on every core, keeping the rows that fire: ``O(m n d)`` time once,
  memory ``O(|A_0| d)`` plus one block per thread.

The fired sets as CSR by input (:meth:`BandImplicitTrainer.active_sets`) are formed from
the neuron-major state when asked, outside the step. ``weights()`` regenerates ``W0``
where it fits in memory and overwrites the stored rows; :meth:`BandImplicitTrainer.weights_at`
gives any subset of rows without that.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.special import ndtr

from sublin_bench.generator import blocks_in_flight_bytes, expected_candidates
from sublin_bench.impls._sparse import direction, symdiff_size
from sublin_bench.impls.band import _DRIFT_SAFETY, BandTrainer, preactivations, resolve_margin
from sublin_bench.impls.dense import block_rows
from sublin_bench.interface import UpdateResult
from sublin_bench.linalg import indptr_from_counts

#: Neurons per task of the parallel pass (large enough that scheduling costs nothing,
#: small enough that two threads stay balanced on a few thousand neurons).
CHUNK = 512


@numba.njit(cache=True, parallel=True)
def move_active(W, U, uptr, uinp, cptr, cinp, cz, drift, flag, g, X64, X, a, coef, D, u):
    """One step's pass over the firing neurons ``U``: ``w_r += coef a_r sum_{i in S(r)}
    g_i x_i``, the drift bound, and either the re-evaluation of the candidates (written
    to ``cz`` in place) or, where the bound reached ``D - 2 e_r``, ``flag[q] = True``
    (the caller re-anchors those). Returns the number of candidates evaluated.
    ``O(sum_r (|S(r)| + |C(r)| + 1) d)``, in parallel over blocks of neurons."""
    nU = U.shape[0]
    d = W.shape[1]
    nchunk = (nU + CHUNK - 1) // CHUNK
    evaluated = np.zeros(nchunk, dtype=np.int64)
    for k in numba.prange(nchunk):
        acc = np.empty(d)
        ev = 0
        for q in range(k * CHUNK, min(nU, (k + 1) * CHUNK)):
            r = U[q]
            direction(acc, uptr[q], uptr[q + 1], uinp, g, X64)
            s = coef * a[r]
            tn = 0.0
            wn = 0.0
            for c in range(d):
                t = s * acc[c]
                W[r, c] = W[r, c] + t
                w = np.float64(W[r, c])
                tn += t * t
                wn += w * w
            wn = np.sqrt(wn)
            drift[q] += (np.sqrt(tn) + 1.01 * u * wn) * (1 + _DRIFT_SAFETY)
            e = 2.0 * (d + 2) * u * (wn + D)
            if not drift[q] <= (D - 2 * e) * (1 - _DRIFT_SAFETY):
                flag[q] = True
                continue
            flag[q] = False
            for p in range(cptr[q], cptr[q + 1]):
                i = cinp[p]
                z = 0.0
                for c in range(d):
                    z += W[r, c] * X[i, c]
                cz[p] = z
            ev += cptr[q + 1] - cptr[q]
        evaluated[k] = ev
    return evaluated.sum()


@numba.njit(cache=True)
def settle_active(U, uptr, uinp, cptr, cinp, cz, drift, flag, ZR, cand_thr, b):
    """The state of ``A_{t+1}`` after :func:`move_active`: for each neuron its candidates
    (kept, or from its re-anchored pre-activations ``ZR``, one row per flagged neuron in
    order) and its fired inputs ``{i in C(r) : z_ri > b}``; neurons that fire on nothing
    are dropped. Returns ``(U, uptr, uinp, uz, cptr, cinp, cz, drift, flips)`` with
    ``flips = sum_r |S_t(r) Δ S_{t+1}(r)|``. ``O(sum_r |C(r)| + |R| n)``."""
    nU = U.shape[0]
    n = ZR.shape[1]
    cap = cinp.shape[0] + ZR.shape[0] * n
    U2 = np.empty(nU, dtype=np.int64)
    drift2 = np.empty(nU)
    uptr2 = np.empty(nU + 1, dtype=np.int64)
    cptr2 = np.empty(nU + 1, dtype=np.int64)
    uinp2 = np.empty(cap, dtype=np.int64)
    uz2 = np.empty(cap)
    cinp2 = np.empty(cap, dtype=np.int64)
    cz2 = np.empty(cap)
    nu = 0
    kf = 0
    kc = 0
    kr = 0
    flips = 0
    for q in range(nU):
        kf0 = kf
        kc0 = kc
        fresh = flag[q]  # re-anchored: its candidates come from its row of ZR
        lo, hi = (0, n) if fresh else (cptr[q], cptr[q + 1])
        for p in range(lo, hi):
            if fresh:
                i, z = p, ZR[kr, p]
                if not z > cand_thr:
                    continue
            else:
                i, z = cinp[p], cz[p]
            cinp2[kc] = i
            cz2[kc] = z
            kc += 1
            if z > b:
                uinp2[kf] = i
                uz2[kf] = z
                kf += 1
        kr += fresh
        flips += symdiff_size(uinp, uptr[q], uptr[q + 1], uinp2, kf0, kf)
        if kf > kf0:
            U2[nu] = U[q]
            drift2[nu] = 0.0 if fresh else drift[q]
            uptr2[nu] = kf0
            cptr2[nu] = kc0
            nu += 1
        else:
            kc = kc0  # it fires on nothing: it never moves again, its candidates go
    uptr2[nu] = kf
    cptr2[nu] = kc
    return (U2[:nu], uptr2[: nu + 1], uinp2[:kf], uz2[:kf], cptr2[: nu + 1], cinp2[:kc], cz2[:kc],
            drift2[:nu], flips)


@numba.njit(cache=True)
def view_predictions(U, uptr, uinp, uz, a, b, sqrt_m, n):
    """``f_i = sum_{r : i in S(r)} a_r (z_ri - b) / sqrt m`` from the neuron-major state."""
    f = np.zeros(n)
    for q in range(U.shape[0]):
        ar = a[U[q]]
        for p in range(uptr[q], uptr[q + 1]):
            f[uinp[p]] += ar * (uz[p] - b)
    for i in range(n):
        f[i] /= sqrt_m
    return f


class BandImplicitTrainer(BandTrainer):
    """The band index over the firing neurons only, kept neuron by neuron (see the module
    docstring). It takes ``band``'s options and margin; its state and step
    (:meth:`_build_state`, :meth:`_update`) replace ``band``'s input-major lists, so
    ``band``'s ``_build`` and ``_refresh`` are not used.

    Parameters
    ----------
    margin : float, optional
        The margin ``D > 0`` of the candidate inputs; defaults to ``band``'s
        (:func:`sublin_bench.generator.default_margin`). Any margin works with a sampled
        problem: the sample holds every neuron that fires at ``W0``.
    neuron_order : {"firing", "given"}
        How the stored rows are ordered (see :mod:`impls._sparse`): the ones firing on the
        most inputs first (default), or increasing neuron index.
    """

    name = "band-implicit"
    holds_problem_weights = False

    @classmethod
    def memory_estimate(cls, spec, margin=None) -> int:
        b = spec.threshold
        D = resolve_margin(margin, b)
        K = expected_candidates(spec.m, spec.n, b)  # P(a neuron fires at W0) <= n Q(b)
        cand = spec.m * spec.n * float(ndtr(D - b))  # expected sum_i |C_i|, an upper bound on the stored pairs
        per_row = spec.d * spec.itemsize + 8 + 8 + 10 + spec.d * 8 + 6 * 8  # W, a, perm, keys, gather, state
        return int(K * per_row + 6 * 16 * cand + block_rows(spec) * (spec.d + 3 * spec.n) * 8
                   + blocks_in_flight_bytes(spec.m, (spec.d + spec.n) * 8))

    def _initial_rows(self):
        problem = self.problem
        XT = self._XT
        bt = np.asarray(problem.b, dtype=problem.dtype)
        sample = problem.sample
        if sample is not None:  # the sample holds every neuron above t0 <= b
            counts = np.count_nonzero(sample.W @ XT > bt, axis=1)
            sel = np.flatnonzero(counts)
            return sample.W[sel], sample.idx[sel], sample.a[sel], counts[sel]

        def keep(start, Wb, ab):
            c = np.count_nonzero(Wb @ XT > bt, axis=1)
            sel = np.flatnonzero(c)
            return Wb[sel], sel + start, ab[sel], c[sel]

        parts = problem.map_blocks(keep, copy=False)
        if not parts:
            return np.empty((0, problem.d), problem.dtype), np.empty(0, np.int64), np.empty(0, np.int8), np.empty(0, np.int64)
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(4))

    def _build_state(self):
        spec = self.problem.spec
        K, n = self._W.shape[0], spec.n
        b, D = self.problem.b, self.margin
        rr, ii, zz = [np.empty(0, np.int64)], [np.empty(0, np.int64)], [np.empty(0)]
        rows = block_rows(spec)
        for s in range(0, K, rows):
            Z = self._W[s : s + rows] @ self._XT
            r, i = np.nonzero(Z > b - D)  # row-major: by neuron, inputs ascending
            rr.append(r + s)
            ii.append(i)
            zz.append(Z[r, i].astype(np.float64))
        r, i, z = (np.concatenate(v) for v in (rr, ii, zz))
        fired = z > b
        fcount = np.bincount(r[fired], minlength=K)
        self._U = np.flatnonzero(fcount).astype(np.int64)
        keep = fcount[r] > 0
        self._cptr = indptr_from_counts(np.bincount(r[keep], minlength=K)[self._U])
        self._cinp, self._cz = i[keep].astype(np.int64), z[keep]
        self._uptr = indptr_from_counts(fcount[self._U])
        self._uinp, self._uz = i[fired].astype(np.int64), z[fired]
        self._drift = np.zeros(self._U.size)
        self._set_derived()
        sample = self.problem.sample
        scanned = self.problem.m if sample is None else sample.W.shape[0]  # rows _initial_rows multiplied
        return {"build_inner_products": (scanned + K) * n, "candidates": int(self._cinp.size),
                "stored_neurons": K}

    # -- the step ---------------------------------------------------------------------

    def _set_derived(self):
        self._f = view_predictions(self._U, self._uptr, self._uinp, self._uz, self._a64,
                                   float(self.problem.b), self._sqrt_m, self.problem.n)
        self._C = None

    def _fired_sizes(self):
        return np.bincount(self._uinp, minlength=self.problem.n)

    def _update(self, g):
        U = self._U
        b, D = float(self.problem.b), self.margin
        coef = -self.step_size / self._sqrt_m
        flag = np.empty(U.size, dtype=np.bool_)
        ev = move_active(self._W, U, self._uptr, self._uinp, self._cptr, self._cinp, self._cz, self._drift, flag,
                         np.asarray(g, dtype=np.float64), self._X64, self._X, self._a64, coef, D,
                         self._unit_roundoff)
        R = U[flag]
        ZR = preactivations(self._W, R, self._XT)
        (self._U, self._uptr, self._uinp, self._uz, self._cptr, self._cinp, self._cz, self._drift,
         flips) = settle_active(U, self._uptr, self._uinp, self._cptr, self._cinp, self._cz, self._drift, flag, ZR,
                                b - D, b)
        self._set_derived()
        n = self.problem.n
        work = {
            "neurons_moved": int(U.size),
            "candidates_evaluated": int(ev),
            "neurons_reanchored": int(R.size),
            "neurons_retired": int(U.size - self._U.size),
            "work": int(U.size) + int(ev) + int(R.size) * n,
        }
        return UpdateResult(flips=int(flips), moved=int(U.size), work=work)

    # -- views ------------------------------------------------------------------------

    def _by_input(self, ptr, inputs, given):
        """Neuron-major pairs (``ptr`` over ``self._U``, ``inputs``) as CSR by input: its
        indptr, the neuron of each entry (problem order if ``given``, else stored rows),
        rows sorted, and the permutation of the entries."""
        col = np.repeat(self._U, np.diff(ptr))
        if given and self._perm is not None:
            col = self._perm[col]
        order = np.lexsort((col, inputs))
        return indptr_from_counts(np.bincount(inputs, minlength=self.problem.n)), col[order], order

    def _fired_csr(self, given: bool = True):
        """The fired sets as CSR by input ``(indptr, indices, z)``, formed from the
        neuron-major state (``O(K log K)``, outside the step)."""
        ptr, col, order = self._by_input(self._uptr, self._uinp, given)
        return ptr, col, self._uz[order]

    @property
    def candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """The candidate inputs of the firing neurons as CSR by input, neuron indices in the
        problem's order (for inspection and tests)."""
        return self._by_input(self._cptr, self._cinp, True)[:2]

    @property
    def stored(self) -> int:
        """How many neurons are stored (those firing at ``W0``)."""
        return int(self._W.shape[0])

    @property
    def active(self) -> int:
        """How many stored neurons still fire (``|A_t|``)."""
        return int(self._U.size)

    def weights(self) -> np.ndarray:
        return self.problem.w0_with(self._perm, self._W)

    def weights_at(self, idx) -> np.ndarray:
        """Rows ``idx`` of ``W_t`` (any neuron indices), regenerating only the blocks they
        lie in."""
        return self.problem.w0_at_with(idx, self._perm, self._W)
