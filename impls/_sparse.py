"""What the sublinear implementations share: the step restricted to fired neurons.

An implementation that knows the fired sets ``S_i`` (as CSR, with the pre-activations
``z_ri`` of the fired pairs) can do a whole Gauss-Newton step touching only the union
``U = ∪_i S_i``:

* predictions ``f_i = sum_{r in S_i} a_r (z_ri - b) / sqrt m`` from the fired values;
* the neuron-major view of the fired pairs (for each ``r`` in ``U``, the inputs it fires
  on), from which the counts ``|S_i ∩ S_j|`` cost ``sum_r c_r^2`` and the update
  ``w_r -= (eta a_r / sqrt m) sum_{i: r in S_i} g_i x_i`` costs ``sum_i |S_i| d``, with
  ``c_r`` the number of inputs neuron r fires on;
* flips as the symmetric differences of old and new sorted sets.

None of this allocates or scans anything of size m. Subclasses supply the index: how to
build it, and how to refresh it after the rows ``U`` of ``W`` moved (:meth:`_refresh`),
returning the new fired sets.

Neuron order
------------
Inside a trainer the neurons may be stored in another order than the problem's. With
``neuron_order="firing"`` (the default) the build sorts them once, stably, by the number
of inputs they fire on at ``W_0``, most first (:func:`firing_order`): the neurons that
fire, and so move, sit together at the front of ``W`` and of the index, instead of
scattered over all m rows. Every per-step access to neuron data then falls in few cache
lines and pages: at alpha = 0.24 about 12% of the neurons move each step, which in the
problem's order put a moved neuron in ~86% of tree's 16-neuron leaf blocks, so the key
refresh streamed almost all ``4 m n`` bytes of keys every step (memory traffic
proportional to m although the counted work is not). The sort costs ``O(m n d)`` (the
inner products the index build computes anyway) plus a radix sort, and is timed as part
of the build; the steps do nothing more. The order is fixed at build: neurons that start
to fire later are wherever the sort left them, so the gain shrinks as firing sets drift
(at alpha = 0.5 they drift far), but the work and the results never depend on it.
``neuron_order="given"`` keeps the problem's order.

Everything public speaks the problem's order: :meth:`SparseTrainer.active_sets` and
:meth:`SparseTrainer.weights` map back (``O(K log K)`` and ``O(m d)``, outside the step).
Private arrays (``_W``, ``_idx``, the index) are in the stored order.
"""

from __future__ import annotations

import math
import time

import numba
import numpy as np

from sublin_bench.impls._prefetch import prefetch_row
from sublin_bench.impls.dense import block_rows
from sublin_bench.errors import ConfigError
from sublin_bench.interface import Trainer, UpdateResult
from sublin_bench.linalg import rows_of
from sublin_bench.solvers import view_counts

#: How many rows ahead the kernels prefetch (see :mod:`impls._prefetch`).
AHEAD = 8


@numba.njit(cache=True)
def symdiff_size(x, a, ae, y, b, be):
    """``|x[a:ae] Δ y[b:be]|`` for two ascending runs (a merge, ``O(ae - a + be - b)``)."""
    total = 0
    while a < ae and b < be:
        if x[a] == y[b]:
            a += 1
            b += 1
        elif x[a] < y[b]:
            total += 1
            a += 1
        else:
            total += 1
            b += 1
    return total + (ae - a) + (be - b)


@numba.njit(cache=True)
def _symdiff_total(p0, i0, p1, i1):
    """``sum_i |S_i Δ S'_i|`` for two CSR structures with sorted rows."""
    total = 0
    for i in range(p0.shape[0] - 1):
        total += symdiff_size(i0, p0[i], p0[i + 1], i1, p1[i], p1[i + 1])
    return total


@numba.njit(cache=True)
def predictions(ptr, idx, z, a, b, sqrt_m):
    """``f_i = sum_{r in S_i} a_r (z_ri - b) / sqrt m``."""
    n = ptr.shape[0] - 1
    f = np.zeros(n)
    for i in range(n):
        s = 0.0
        for p in range(ptr[i], ptr[i + 1]):
            s += a[idx[p]] * (z[p] - b)
        f[i] = s / sqrt_m
    return f


@numba.njit(cache=True)
def neuron_view(ptr, idx, order):
    """Neuron-major view of the fired pairs: ``U`` (sorted union), and for ``U[u]`` the
    inputs ``uinp[uptr[u]:uptr[u+1]]`` (ascending). ``order`` is a stable argsort of
    ``idx``. ``O(K)`` for ``K = sum_i |S_i|``."""
    K = idx.shape[0]
    rows = np.empty(K, dtype=np.int64)
    for i in range(ptr.shape[0] - 1):
        for p in range(ptr[i], ptr[i + 1]):
            rows[p] = i
    U = np.empty(K, dtype=np.int64)
    uptr = np.empty(K + 1, dtype=np.int64)
    uinp = np.empty(K, dtype=np.int64)
    nu = 0
    last = -1
    for q in range(K):
        p = order[q]
        r = idx[p]
        if r != last:
            U[nu] = r
            uptr[nu] = q
            nu += 1
            last = r
        uinp[q] = rows[p]
    uptr[nu] = K
    return U[:nu], uptr[: nu + 1], uinp


#: ``C_ij = |S_i ∩ S_j|`` from the neuron-major view (one kernel, shared with the solvers'
#: diagnostics).
intersection_counts = view_counts


#: Bits per pass of :func:`stable_order` (2^11 counters: in L1, two passes up to m = 2^22).
RADIX_BITS = 11


@numba.njit(cache=True)
def stable_order(idx):
    """``np.argsort(idx, kind="stable")`` for non-negative integers, by LSD radix sort:
    ``ceil(log2(max + 1) / RADIX_BITS)`` passes of ``O(K)`` with a table of fixed size,
    so its cost follows ``K = len(idx)`` and not m (about 3x faster than a merge sort at
    K = 1.4e5, the fired pairs at alpha = 0.24, m = 2^20)."""
    K = idx.shape[0]
    order = np.arange(K)
    tmp = np.empty(K, dtype=np.int64)
    nb = 1 << RADIX_BITS
    mask = nb - 1
    cnt = np.empty(nb + 1, dtype=np.int64)
    mx = 0
    for v in idx:
        if v > mx:
            mx = v
    shift = 0
    while (mx >> shift) > 0:
        cnt[:] = 0
        for p in range(K):
            cnt[((idx[order[p]] >> shift) & mask) + 1] += 1
        for c in range(nb):
            cnt[c + 1] += cnt[c]
        for p in range(K):
            q = order[p]
            c = (idx[q] >> shift) & mask
            tmp[cnt[c]] = q
            cnt[c] += 1
        order, tmp = tmp, order
        shift += RADIX_BITS
    return order


@numba.njit(cache=True)
def derive(ptr, idx, z, a, b, sqrt_m, n):
    """What every step reads from the fired sets, in one call: predictions and the
    neuron-major view. ``O(K log m / RADIX_BITS)``. The intersection counts
    (``O(sum_r c_r^2)``) are formed only when a step asks for them (the exact solver)."""
    f = predictions(ptr, idx, z, a, b, sqrt_m)
    order = stable_order(idx)
    U, uptr, uinp = neuron_view(ptr, idx, order)
    return f, U, uptr, uinp


@numba.njit(inline="always")
def direction(acc, p0, p1, uinp, g, X):
    """``acc = sum_{p in p0..p1-1} g[uinp[p]] x_{uinp[p]}``: one neuron's step direction
    over its fired inputs, summed in their (ascending) order."""
    for c in range(acc.shape[0]):
        acc[c] = 0.0
    for p in range(p0, p1):
        i = uinp[p]
        gi = g[i]
        for c in range(acc.shape[0]):
            acc[c] += gi * X[i, c]


@numba.njit(cache=True)
def apply_update(W, U, uptr, uinp, g, X, a, coef):
    """``w_r += coef a_r sum_{i: r in S_i} g_i x_i`` for every ``r`` in ``U``, in place.
    ``O(K d)``."""
    d = W.shape[1]
    acc = np.empty(d)
    for u in range(U.shape[0]):
        if u + AHEAD < U.shape[0]:
            prefetch_row(W, U[u + AHEAD])
        r = U[u]
        direction(acc, uptr[u], uptr[u + 1], uinp, g, X)
        s = coef * a[r]
        for c in range(d):
            W[r, c] = W[r, c] + s * acc[c]


#: The values of the ``neuron_order`` option.
NEURON_ORDERS = ("firing", "given")


@numba.njit(cache=True)
def _fire_counts(Z, b, n, key, s0):
    """``key[s0 + t] = n - |{i : Z[t, i] > b}|`` (0 for a neuron firing on every input)."""
    for t in range(Z.shape[0]):
        c = 0
        for i in range(Z.shape[1]):
            c += Z[t, i] > b
        key[s0 + t] = n - c


def firing_order(W: np.ndarray, XT: np.ndarray, b: float, rows: int) -> np.ndarray:
    """A permutation of the rows of ``W`` that puts the neurons firing on the most inputs
    first: a stable sort of ``c_r = |{i : <w_r, x_i> > b}|``, descending, so ties keep
    their order. ``O(m n d)`` in blocks of ``rows`` rows (0.05 s at m = 2^20,
    n = d = 32), then a radix sort (numpy's stable sort of 16-bit keys, 0.013 s). The
    values only order the neurons, so their rounding does not matter."""
    m, n = W.shape[0], XT.shape[1]
    key = np.empty(m, dtype=np.uint16 if n < 2**16 else np.int64)
    for s in range(0, m, rows):
        _fire_counts(W[s : s + rows] @ XT, float(b), n, key, s)
    return np.argsort(key, kind="stable").astype(np.int64, copy=False)


def order_by_counts(counts: np.ndarray, n: int) -> np.ndarray:
    """:func:`firing_order` from fire counts ``c_r`` computed elsewhere (a streaming build
    that has the pre-activations at hand)."""
    key = (n - np.asarray(counts)).astype(np.uint16 if n < 2**16 else np.int64)
    return np.argsort(key, kind="stable").astype(np.int64, copy=False)


def dot_slack(rownorm: np.ndarray, d: int, dtype) -> np.ndarray:
    """A bound on ``|z_a - z_b|`` for two floating-point evaluations of ``<w_r, x>`` with
    ``||x|| = 1`` in any summation order: ``2 (d + 2) u ||w_r||`` (Cauchy-Schwarz on the
    standard ``d u sum |w_k x_k|`` bound)."""
    u = np.finfo(dtype).eps / 2
    return 2.0 * (d + 2) * u * rownorm


class SparseTrainer(Trainer):
    """Base of the index-based trainers: the step on the fired neurons only.

    State kept between steps (all of size ``O(sum_i |S_i|)`` except ``W``):
    ``_ptr, _idx`` the CSR fired sets, ``_z`` their pre-activations (float64), and the
    neuron-major view ``_U, _uptr, _uinp`` of the same pairs.
    """

    sublinear = True
    _warmed: set = set()

    @classmethod
    def warm_up(cls, dtype="float64") -> None:
        """Compile (or load from numba's cache) every kernel this class uses for ``dtype``,
        by training a tiny problem, so that no JIT time lands in a timed region."""
        key = (cls, str(dtype))
        if key in SparseTrainer._warmed:
            return
        SparseTrainer._warmed.add(key)
        from sublin_bench.problem import ProblemSpec, make_problem

        tiny = cls(make_problem(ProblemSpec(m=64, n=3, d=2, alpha=0.1, seed=1, dtype=dtype)))
        tiny.run(2)

    def __init__(self, problem, *, step_size=1.0, neuron_order="firing", **_):
        super().__init__(problem, step_size=step_size)
        if neuron_order not in NEURON_ORDERS:
            raise ConfigError(
                f"neuron_order must be one of {', '.join(map(repr, NEURON_ORDERS))}, got {neuron_order!r}."
            )
        self.neuron_order = neuron_order
        self.warm_up(problem.spec.dtype)
        spec = problem.spec
        self._X = problem.X
        self._X64 = problem.X.astype(np.float64)
        self._XT = np.ascontiguousarray(problem.X.T)
        self._sqrt_m = math.sqrt(spec.m)
        self._unit_roundoff = float(np.finfo(spec.dtype).eps) / 2  # u of the working dtype
        t0 = time.perf_counter()
        W, idx, a, counts = self._initial_rows()
        if neuron_order == "firing":
            order = (firing_order(W, self._XT, problem.b, block_rows(spec)) if counts is None
                     else order_by_counts(counts, spec.n))
            self._W = np.take(W, order, axis=0)  # a copy, in the stored order
            self._a64 = a[order].astype(np.float64)
            self._perm = order if idx is None else idx[order]
        else:
            self._perm = idx
            self._W = np.array(W, dtype=spec.dtype, copy=True)
            self._a64 = a.astype(np.float64)
        del W
        self.build_work = self._build_state()
        self.build_seconds = time.perf_counter() - t0

    # -- subclass hooks ---------------------------------------------------------------

    def _initial_rows(self):
        """The neurons the trainer stores: ``(W, idx, a, counts)`` with ``W`` their rows of
        ``W0`` (in increasing neuron order), ``idx`` their neuron indices (None: all m, in
        order), ``a`` their signs, and ``counts`` the number of inputs each fires on at
        ``W0`` if known (else None: computed for the firing-first order). Here every
        neuron; ``band-implicit`` keeps the candidates."""
        return self.problem.W0, None, self.problem.a, None

    def _build(self):
        """Build the index from ``self._W``; return ``(indptr, indices, z, work)``."""
        raise NotImplementedError

    def _build_state(self):
        """Everything the first step reads (the index, the fired sets and what derives from
        them), timed as the build; returns the build's work counters."""
        self._ptr, self._idx, self._z, work = self._build()
        self._set_derived()
        return work

    def _refresh(self, g: np.ndarray, coef: float):
        """The rows ``self._U`` of ``self._W`` just moved by
        ``coef a_r sum_{i in inputs(r)} g_i x_i`` (``self._uptr``/``self._uinp`` list the
        inputs). Bring the index up to date; return ``(indptr, indices, z, work)``."""
        raise NotImplementedError

    # -- the shared sparse step ---------------------------------------------------------

    def _set_derived(self):
        self._f, self._U, self._uptr, self._uinp = derive(
            self._ptr, self._idx, self._z, self._a64, float(self.problem.b), self._sqrt_m, self.problem.n
        )
        self._C = None  # the counts of these sets, formed when first asked for

    def _predictions(self):
        return self._f

    def _counts(self):
        if self._C is None:
            self._C = intersection_counts(self._uptr, self._uinp, self.problem.n)
        return self._C

    def _fired_sizes(self):
        return np.diff(self._ptr)

    def _update(self, g):
        U = self._U
        coef = -self.step_size / self._sqrt_m
        apply_update(self._W, U, self._uptr, self._uinp, g, self._X64, self._a64, coef)
        old = (self._ptr, self._idx)
        self._ptr, self._idx, self._z, work = self._refresh(g, coef)
        flips = int(_symdiff_total(old[0], old[1], self._ptr, self._idx))
        self._set_derived()
        work = dict(work)
        work["neurons_moved"] = int(U.size)
        return UpdateResult(flips=flips, moved=int(U.size), work=work)

    def _given_sorted(self, ptr: np.ndarray, idx: np.ndarray):
        """CSR column indices in the stored order -> the problem's order with rows sorted,
        and the permutation of the entries that does it."""
        given = self._perm[idx]
        order = np.lexsort((given, rows_of(ptr)))
        return given[order], order

    def _given_indices(self, ptr: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """CSR column indices in the stored order -> the problem's order, rows sorted."""
        if self._perm is None:
            return idx.copy()
        return self._given_sorted(ptr, idx)[0]

    def _given_rows(self, A: np.ndarray) -> np.ndarray:
        """An array indexed by neuron in the stored order -> the problem's order (a copy)."""
        if self._perm is None:
            return A.copy()
        if A.shape[0] != self.problem.m:
            raise NotImplementedError("only some neurons are stored; see weights_at")
        out = np.empty_like(A)
        out[self._perm] = A
        return out

    def _fired_csr(self, given: bool = True):
        """The fired sets as CSR by input ``(indptr, indices, z)``, rows sorted, with neuron
        indices in the problem's order (``given``) or the stored order."""
        if not given or self._perm is None:
            return self._ptr, self._idx, self._z
        col, order = self._given_sorted(self._ptr, self._idx)
        return self._ptr, col, self._z[order]

    def active_sets(self):
        ptr, idx, _ = self._fired_csr()
        return ptr.copy(), idx.copy()

    def neuron_view(self):
        """The neuron-major view the step keeps anyway (``_U``, ``_uptr``, ``_uinp``): the
        products ``J v`` and ``J^T u`` then cost ``O(K d)``, nothing of size m."""
        from sublin_bench.solvers import NeuronView

        U = self._U
        return NeuronView(a=self._a64[U], ptr=self._uptr, inputs=self._uinp,
                          problem_rows=U if self._perm is None else self._perm[U], m=self.problem.m)

    def weights(self):
        return self._given_rows(self._W)
