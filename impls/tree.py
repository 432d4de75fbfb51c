"""``tree``: the paper's index, one max-tree per input over the m neurons.

Layout (pynndescent style: plain arrays, no jitclass)
-----------------------------------------------------
* ``keys`` (nb, n, L) float32: the leaf key of neuron r in input i's tree, an upper
  bound of ``<w_r, x_i>`` (rounded up, see below), at ``[r // L, i, r % L]``: neurons in
  leaf blocks of L, each block stored input-major, so the query scans one contiguous run
  per hot block and a refresh writes n short strides within one block;
* ``heap`` (n, 2B) float32: row i holds the internal nodes of input i's F-ary tree
  (fan-out F = 8 by default), so a query walks one contiguous array and the F children
  of a node share a cache line. Node 1 is the root, node k has children
  ``F k .. F k + F - 1`` and parent ``k // F``; node ``B + j`` holds the maximum key of
  leaf block j (rows ``jL .. jL+L-1``). ``B`` is the power of F at or above
  ``ceil(m / L)``; level l occupies ``[F^l, 2 F^l)`` and the gaps between levels stay
  -inf. With the default leaf size 16 the heap has between m / 16 and m / 2 leaves
  (``8 B n`` bytes, at most the size of the keys), and its upper levels stay in cache.

Neuron order: r above is a neuron's position in the stored order, by default the
firing-first order of :mod:`impls._sparse` (the neurons that fire at build fill the first
leaf blocks). A moved neuron's n keys lie in its own block, so with the fired neurons
packed together the refresh writes few blocks instead of nearly all of them, and a
query finds its hot blocks side by side. Against ``neuron_order="given"`` (interleaved,
medians of 7 fresh trainers x 3 steps, m = 2^16 / 2^18 / 2^20): 1.29x / 1.35x / 1.38x
faster at alpha = 0.24 and 1.31x / 1.53x / 1.97x at alpha = 0.5.

Query (``S_i``): descend from the root only into nodes whose key exceeds ``b``; in a block
that does, evaluate ``<w_r, x_i>`` exactly (d flops) for the rows whose key exceeds ``b``.
``O(k_i F log_F m + k_i d)`` per input. The candidates are collected first and evaluated
in a second pass that prefetches their rows of W a few candidates ahead, and the key
refresh prefetches the keys and weights of the rows it will move next
(:mod:`impls._prefetch`): at large m each of those reads is a cache miss, and overlapping
them is worth 1.2x (alpha = 0.5) to 1.4x (alpha = 0.24) of the step at m = 2^20.

Update: when the rows ``U`` of W move, their keys change in every input's tree by
``coef a_r sum_j g_j <x_j, x_i>``, computed from ``X X^T`` (precomputed once) in
``c_r n`` flops per neuron instead of ``n d``; then the dirty blocks and their ancestors,
repaired lazily (see :func:`refresh_keys`): a node is exact wherever its subtree holds a
key above ``b``, which is all the query looks at. A key that stays below ``b`` costs
O(1); one that crosses or sits above ``b`` costs a walk up its path that stops where
nothing changes.

Exactness: every key satisfies ``key_ri >= <w_r, x_i> + (d + 2) u ||w_r||`` (exact inner
product), hence is at least *any* floating-point evaluation of ``<w_r, x_i>`` (the
standard dot-product error bound). At build the key is ``z + 2 (d + 2) u ||w_r||``
rounded up to float32 (:func:`fill_keys`), with ``z`` the BLAS value; each update adds a
slack that bounds the rounding of the update itself (see :func:`refresh_keys`) and rounds
up. So the pruning never drops a neuron whose exact check would fire; keys may drift
above the value by a few float32 ulps over many steps, which only adds candidates. The
query compares float32 keys with ``b`` rounded down.

Memory: ``4 m n`` bytes of keys, ``8 B n`` of heap (``B`` between ``m / L`` and
``8 m / L``), the weights, and ``8 m`` of row norms.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.special import ndtr

from sublin_bench.impls._prefetch import prefetch, prefetch_row
from sublin_bench.impls._sparse import AHEAD, SparseTrainer, dot_slack
from sublin_bench.impls.dense import block_rows
from sublin_bench.errors import ConfigError

NEG_INF32 = np.float32(-np.inf)
_STACK = 1024  # DFS stack entries: at most (F - 1) per level plus one, F <= 16, <= 63 levels


@numba.njit(cache=True)
def fill_keys(keys, Z, slack, s0):
    """Write the keys of rows ``s0 .. s0 + len(Z) - 1``: ``Z[t, i] + slack[t]`` (float64)
    rounded up to the nearest float32 at or above it, at ``keys[r // L, i, r % L]``.

    Rounding up without a branch: round to nearest, then, where that fell below the
    float64 value, step the float32 bit pattern one unit towards +inf (``+1`` for a
    non-negative pattern, ``-1`` for a negative one; a value rounded down is never
    ``-0.0``). A data-dependent branch there mispredicted about half the time and made
    this loop ~9x slower."""
    nb, n, L = keys.shape
    bits = keys.view(np.int32)
    for t in range(Z.shape[0]):
        r = s0 + t
        blk = r // L
        slot = r - blk * L
        sl = slack[t]
        for c in range(n):
            v = np.float64(Z[t, c]) + sl
            k = np.float32(v)
            keys[blk, c, slot] = k
            up = np.int32(np.float64(k) < v)
            p = bits[blk, c, slot]
            bits[blk, c, slot] = p + up * (np.int32(1) - np.int32(2) * np.int32(p < 0))


@numba.njit(inline="always")
def _leaf_max(keys, j, c):
    """The largest key of input ``c`` in leaf block ``j``."""
    v = NEG_INF32
    for s in range(keys.shape[2]):
        if keys[j, c, s] > v:
            v = keys[j, c, s]
    return v


@numba.njit(inline="always")
def _children_max(heap, c, k, F):
    """The largest of the F children of node ``k`` in input ``c``'s tree."""
    v = NEG_INF32
    for q in range(F * k, F * k + F):
        if heap[c, q] > v:
            v = heap[c, q]
    return v


@numba.njit(cache=True)
def build_heap(keys, F, heap, B):
    """Fill ``heap`` (n, 2B) from the blocked leaf ``keys`` (nb, n, L); ``O(m n)``.
    Entries that are not nodes of the F-ary layout (the gaps between levels) stay -inf."""
    nb, n = keys.shape[0], keys.shape[1]
    heap[:, :] = NEG_INF32
    for j in range(nb):
        for c in range(n):
            heap[c, B + j] = _leaf_max(keys, j, c)
    lo = B
    while lo > 1:
        lo //= F
        for c in range(n):
            for k in range(lo, 2 * lo):
                heap[c, k] = _children_max(heap, c, k, F)


@numba.njit(cache=True)
def refresh_keys(keys, heap, B, F, bq, rownorm, W, U, uptr, uinp, g, XXt, a, coef, u):
    """Move the leaf keys of the rows ``U`` in every input's tree and repair the heap.

    The change of ``<w_r, x_i>`` is ``coef a_r sum_{j in inputs(r)} g_j <x_j, x_i>``, read
    from the precomputed ``XXt`` in ``c_r n`` flops instead of ``n d``. The result is
    rounded up with a slack that covers every rounding of the update and of later
    evaluations, so ``keys[r, i] >= <w_r, x_i> + (d + 2) u ||w_r||`` stays true.

    Heap invariant (all the query needs): a node whose subtree holds a key above ``bq``
    equals the largest key below it, and a node above ``bq`` has such a key below it.
    Keys at or below ``bq`` need not be bounded by their ancestors. So a key that rises
    above ``bq`` is pushed up while it exceeds its ancestors; a key that falls from above
    ``bq`` triggers an exact recomputation up its path (stopping where nothing changes);
    a key that stays at or below ``bq`` costs only its own write, and one at or below
    ``bq`` whose value falls is left as it is (still an upper bound). Returns the number
    of node writes.
    """
    nb, n, L = keys.shape
    d = W.shape[1]
    u64 = 2.0**-53
    dz = np.empty(n)
    writes = 0
    for t in range(U.shape[0]):
        if t + AHEAD < U.shape[0]:  # the next rows' weights and keys (see sublin_bench.impls._prefetch)
            ra = U[t + AHEAD]
            prefetch_row(W, ra)
            base = (ra // L) * n * L + ra % L
            for c in range(n):
                prefetch(keys, base + c * L)
        r = U[t]
        s = coef * a[r]
        gabs = 0.0
        for c in range(n):
            dz[c] = 0.0
        cnt = uptr[t + 1] - uptr[t]
        for p in range(uptr[t], uptr[t + 1]):
            j = uinp[p]
            gj = g[j]
            gabs += abs(gj)
            for c in range(n):
                dz[c] += gj * XXt[j, c]
        nrm = 0.0
        for c in range(d):
            w = np.float64(W[r, c])
            nrm += w * w
        nrm = np.sqrt(nrm) * (1.0 + 4 * d * u64)
        rownorm[r] = nrm
        slack = u * ((d + 3) * nrm + abs(s) * gabs * (2 * cnt + d + 6))
        blk = r // L
        slot = r - blk * L
        leaf = B + blk
        for c in range(n):
            old = keys[blk, c, slot]
            old64 = np.float64(old)
            sdz = s * dz[c]
            # v: an upper bound of the new value (the 4 u64 term covers this sum's rounding)
            v = old64 + sdz + slack
            v += 4 * u64 * (abs(old64) + abs(sdz) + slack)
            if v <= old64 and old <= bq:
                continue  # the old key already bounds the new value, and the query ignores it
            # rounding to float32 moves a value by at most 2^-24 of itself, so lifting it
            # by 2^-22 of itself first keeps the key above v without a branch (at most
            # two float32 ulps above it)
            k = np.float32(v + abs(v) * 2.0**-22 + 1e-300)
            keys[blk, c, slot] = k
            if k > bq and k > old:
                p = leaf
                while p >= 1 and heap[c, p] < k:
                    heap[c, p] = k
                    writes += 1
                    p //= F
            elif k < old and old > bq:
                mx = _leaf_max(keys, blk, c)
                p = leaf
                while heap[c, p] != mx:
                    heap[c, p] = mx
                    writes += 1
                    if p == 1:
                        break
                    p //= F
                    mx = _children_max(heap, c, p, F)
    return writes


@numba.njit(cache=True)
def _evaluate(cbuf, nbuf, W, X, i, b, out_idx, out_z, pos):
    """Evaluate ``<w_r, x_i>`` exactly for the candidates ``cbuf[:nbuf]`` (in order),
    loading their rows of W a few candidates ahead of use; append those above ``b`` to
    row i of the output from ``pos`` on (counting past its end). Returns the new ``pos``."""
    d = W.shape[1]
    cap = out_idx.shape[1]
    for t in range(nbuf):
        if t + AHEAD < nbuf:
            prefetch_row(W, cbuf[t + AHEAD])
        r = cbuf[t]
        z = 0.0
        for c in range(d):
            z += W[r, c] * X[i, c]
        if z > b:
            if pos < cap:
                out_idx[i, pos] = r
                out_z[i, pos] = z
            pos += 1
    return pos


@numba.njit(cache=True)
def query_all(heap, B, keys, F, W, X, b, bq, out_idx, out_z, counts):
    """Report ``S_i = {r : <w_r, x_i> > b}`` for every input, sorted, with the values,
    into row i of ``out_idx`` / ``out_z``.

    ``counts[i]`` is ``|S_i|``, or -1 when row i of the output is too small (the caller
    grows it and asks again). Returns ``(fits, visited, candidates)``: whether every row
    fitted, the tree nodes and leaf keys read, and the candidates evaluated exactly.
    Serial on purpose: a ``prange`` over inputs gained nothing on two cores and lost much
    when BLAS threads from a neighbouring dense run were still spinning.
    """
    nb, n, L = keys.shape
    cap = out_idx.shape[1]
    stack = np.empty(_STACK, dtype=np.int64)
    vis_total = 0
    cnd_total = 0
    fits = True
    cbuf = np.empty(256, dtype=np.int64)  # candidates awaiting their exact evaluation
    for i in range(n):
        pos = 0
        vis = 1
        cnd = 0
        nbuf = 0
        counts[i] = 0
        if heap[i, 1] > bq:
            sp = 1
            stack[0] = 1
            while sp > 0:
                sp -= 1
                k = stack[sp]
                if k < B:
                    vis += F
                    for q in range(F * k + F - 1, F * k - 1, -1):  # right to left: sorted output
                        if heap[i, q] > bq:
                            stack[sp] = q
                            sp += 1
                else:
                    j = k - B
                    for q in range(L):
                        vis += 1
                        if keys[j, i, q] > bq:
                            if nbuf == cbuf.shape[0]:
                                pos = _evaluate(cbuf, nbuf, W, X, i, b, out_idx, out_z, pos)
                                nbuf = 0
                            cbuf[nbuf] = j * L + q
                            nbuf += 1
                            cnd += 1
            pos = _evaluate(cbuf, nbuf, W, X, i, b, out_idx, out_z, pos)
            if pos > cap:
                counts[i] = -1
                fits = False
            else:
                counts[i] = pos
        vis_total += vis
        cnd_total += cnd
    return fits, vis_total, cnd_total


@numba.njit(cache=True)
def compact_rows(out_idx, out_z, counts):
    """The first ``counts[i]`` entries of each row of ``out_idx`` / ``out_z`` as one CSR
    structure ``(indptr, indices, values)``; ``O(sum_i counts[i])``."""
    n = counts.shape[0]
    ptr = np.empty(n + 1, dtype=np.int64)
    ptr[0] = 0
    for i in range(n):
        ptr[i + 1] = ptr[i] + counts[i]
    idx = np.empty(ptr[n], dtype=np.int64)
    z = np.empty(ptr[n], dtype=np.float64)
    for i in range(n):
        o = ptr[i]
        for p in range(counts[i]):
            idx[o + p] = out_idx[i, p]
            z[o + p] = out_z[i, p]
    return ptr, idx, z


def _b_down(b: float) -> np.float32:
    bq = np.float32(b)
    if float(bq) > b:
        bq = np.nextafter(bq, np.float32(-np.inf))
    return bq


class TreeTrainer(SparseTrainer):
    """The paper's search-tree index (see the module docstring).

    Parameters
    ----------
    leaf_size : int, optional
        Neurons per leaf block ``L`` (a power of two); default :meth:`default_leaf_size`.
    fanout : {2, 4, 8, 16}
        Children per internal node ``F`` (default 8: the F children of a node are
        contiguous, 32 bytes, so a level costs one cache line and there are
        ``log_8`` rather than ``log_2`` levels).
    neuron_order : {"firing", "given"}
        How the neurons are laid out in the leaves (see :mod:`impls._sparse`): the ones
        firing on the most inputs first (default), or the problem's order.
    """

    name = "tree"

    def __init__(self, problem, *, step_size=1.0, leaf_size=None, fanout=8, neuron_order="firing"):
        F = int(fanout)
        if F not in (2, 4, 8, 16):
            raise ConfigError(f"fanout must be 2, 4, 8 or 16, got {fanout!r}.")
        if leaf_size is None:
            leaf_size = self.default_leaf_size(problem.m, F)
        L = int(leaf_size)
        if L < 1 or L & (L - 1):
            raise ConfigError(f"leaf_size must be a power of two >= 1, got {leaf_size!r}.")
        self._L, self._F = L, F
        super().__init__(problem, step_size=step_size, neuron_order=neuron_order)

    @staticmethod
    def _heap_leaves(m: int, L: int, F: int = 8) -> int:
        """``B``: the power of F at or above the number of leaf blocks ``ceil(m / L)``."""
        nb = -(-m // L)
        B = 1
        while B < nb:
            B *= F
        return B

    @classmethod
    def default_leaf_size(cls, m: int, F: int = 8) -> int:
        """16 at every m: a block's keys for one input are then one cache line (float32),
        scanned in one read, and the per-input cost of a query, about ``k_i L`` leaf keys
        plus the internal nodes above them, does not jump with m. Choosing L in {16, 32,
        64} by the heap's fill instead alternated L with m and made the query up to 1.3x
        slower at alpha = 0.24 (m = 2^20, L = 32: 35 ms against 27 ms with L = 16). The
        heap has ``B < 8 m / 16`` leaves: at most as many bytes as the keys."""
        return 16

    def keys_matrix(self) -> np.ndarray:
        """The leaf keys as an (m, n) array in the problem's neuron order (for inspection
        and tests)."""
        nb, n, L = self._keys.shape
        return self._given_rows(self._keys.transpose(0, 2, 1).reshape(nb * L, n)[: self.problem.m])

    @classmethod
    def memory_estimate(cls, spec, leaf_size=None, fanout=8) -> int:
        L = leaf_size or cls.default_leaf_size(spec.m, fanout)
        B = cls._heap_leaves(spec.m, L, fanout)
        m, n, d = spec.m, spec.n, spec.d
        fired_guess = 2 * n * spec.m * float(ndtr(-spec.threshold)) + 64 * n  # result rows
        return int(
            m * d * spec.itemsize  # W
            + 4 * (m + L) * n  # leaf keys, blocked
            + 8 * B * n  # heap (n x 2B float32)
            + 8 * m  # row norms
            + 10 * m  # neuron order and its sort keys
            + block_rows(spec) * (d + 2 * n) * 8  # build block
            + fired_guess * 16
        )

    def _build(self):
        spec = self.problem.spec
        m, n = spec.m, spec.n
        L = self._L
        self._B = self._heap_leaves(m, L, self._F)
        nb = -(-m // L)
        # keys blocked as (block, input, slot): a block's keys for one input are contiguous
        self._keys = np.full((nb, n, L), NEG_INF32, dtype=np.float32)
        self._rownorm = np.empty(m, dtype=np.float64)
        rows = max(L, block_rows(spec) // L * L)
        for s in range(0, m, rows):
            e = min(m, s + rows)
            Wb = self._W[s:e]
            self._rownorm[s:e] = np.linalg.norm(Wb.astype(np.float64), axis=1)
            slack = dot_slack(self._rownorm[s:e], self.problem.d, self.problem.dtype)
            fill_keys(self._keys, Wb @ self._XT, slack, s)
        self._heap = np.empty((n, 2 * self._B), dtype=np.float32)
        build_heap(self._keys, self._F, self._heap, self._B)
        self._b = float(self.problem.b)
        self._bq = _b_down(self._b)
        # per-input result rows sized for twice the expected |S_i|, grown on demand
        cap = int(2 * m * float(ndtr(-self.problem.b))) + 64
        self._out_idx = np.empty((n, cap), dtype=np.int64)
        self._out_z = np.empty((n, cap), dtype=np.float64)
        ptr, idx, z, work = self._query()
        work["build_inner_products"] = m * n
        return ptr, idx, z, work

    def _query(self):
        n = self.problem.n
        counts = np.empty(n, dtype=np.int64)
        while True:
            fits, visited, cands = query_all(
                self._heap, self._B, self._keys, self._F, self._W, self._X,
                self._b, self._bq, self._out_idx, self._out_z, counts,
            )
            if fits:
                break
            cap = 2 * self._out_idx.shape[1]
            self._out_idx = np.empty((n, cap), dtype=np.int64)
            self._out_z = np.empty((n, cap), dtype=np.float64)
        ptr, idx, z = compact_rows(self._out_idx, self._out_z, counts)
        return ptr, idx, z, {"tree_nodes_visited": int(visited), "candidates_evaluated": int(cands)}

    def _refresh(self, g, coef):
        n = self.problem.n
        U = self._U
        writes = refresh_keys(
            self._keys, self._heap, self._B, self._F, self._bq, self._rownorm, self._W,
            U, self._uptr, self._uinp, g, self._XXt, self._a64, coef, self._unit_roundoff,
        )
        ptr, idx, z, work = self._query()
        work["leaves_refreshed"] = int(U.size) * n
        work["tree_nodes_updated"] = int(writes)
        work["work"] = (
            work["tree_nodes_visited"] + work["candidates_evaluated"]
            + work["leaves_refreshed"] + work["tree_nodes_updated"]
        )
        return ptr, idx, z, work
