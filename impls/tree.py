"""``tree``: the paper's index, one max-tree per input over the m neurons.

Layout (pynndescent style: plain arrays, no jitclass)
-----------------------------------------------------
* ``keys`` (m, n) float32: leaf key of neuron r in input i's tree, an upper bound of
  ``<w_r, x_i>`` (rounded up, see below);
* ``heap`` (2B, n) float32: the internal nodes of all n trees, interleaved so that one
  node of every tree shares a cache line. Node 1 is the root, node k has children 2k and
  2k+1; node ``B + j`` holds the maximum key of leaf block j (rows ``jL .. jL+L-1``).
  ``B`` is the power of two at or above ``ceil(m / L)``.

Query (``S_i``): descend from the root only into nodes whose key exceeds ``b``; in a block
that does, evaluate ``<w_r, x_i>`` exactly (d flops) for the rows whose key exceeds ``b``.
``O(k_i log m + k_i d)`` per input.

Update: when the rows ``U`` of W move, their keys are recomputed for all inputs (one
``|U| x d x n`` product), then the dirty blocks and their ancestors, deduplicated level by
level (the set of dirty nodes is the same in every tree), are recomputed.
``O(|U| n log(m / |U|))`` node updates.

Exactness: the key stored for ``(r, i)`` is ``round_up_f32(z + 2 (d + 2) u ||w_r||)`` where
``z`` is the BLAS value: by the standard dot-product error bound it is at least the value
of *any* floating-point evaluation of ``<w_r, x_i>``, so the pruning never drops a neuron
whose exact check would fire. The query compares float32 keys with ``b`` rounded down.

Memory: ``4 m n`` bytes of keys, about ``8 m n / L`` of internal nodes, the weights, and
``8 m`` of row norms. ``L = 8`` by default.
"""

from __future__ import annotations

import numba
import numpy as np

from impls._sparse import SparseTrainer, dot_slack, round_up_f32
from impls.dense import block_rows

NEG_INF32 = np.float32(-np.inf)
_STACK = 128  # DFS stack entries; the depth is log2(B) + 2 <= 66


@numba.njit(cache=True)
def build_heap(keys, L, heap, B):
    """Fill ``heap`` (2B, n) from the leaf ``keys`` (m, n). ``O(m n)``."""
    m, n = keys.shape
    nb = (m + L - 1) // L
    for j in range(B):
        node = B + j
        for c in range(n):
            heap[node, c] = NEG_INF32
        if j < nb:
            for r in range(j * L, min(m, (j + 1) * L)):
                for c in range(n):
                    if keys[r, c] > heap[node, c]:
                        heap[node, c] = keys[r, c]
    for k in range(B - 1, 0, -1):
        for c in range(n):
            heap[k, c] = max(heap[2 * k, c], heap[2 * k + 1, c])


@numba.njit(cache=True)
def update_heap(heap, B, keys, L, U, Knew, dirty):
    """Write the new keys ``Knew`` (|U|, n) of the sorted rows ``U`` and recompute the
    dirty nodes bottom-up. Returns the number of internal nodes recomputed."""
    m, n = keys.shape
    for t in range(U.shape[0]):
        for c in range(n):
            keys[U[t], c] = Knew[t, c]
    cnt = 0
    last = -1
    for t in range(U.shape[0]):
        j = U[t] // L
        if j != last:
            dirty[cnt] = j
            cnt += 1
            last = j
    for t in range(cnt):
        j = dirty[t]
        node = B + j
        for c in range(n):
            heap[node, c] = NEG_INF32
        for r in range(j * L, min(m, (j + 1) * L)):
            for c in range(n):
                if keys[r, c] > heap[node, c]:
                    heap[node, c] = keys[r, c]
        dirty[t] = node
    updated = cnt
    while cnt > 0 and dirty[0] > 1:
        new = 0
        last = -1
        for t in range(cnt):
            p = dirty[t] >> 1
            if p != last:
                dirty[new] = p
                new += 1
                last = p
        cnt = new
        for t in range(cnt):
            k = dirty[t]
            for c in range(n):
                heap[k, c] = max(heap[2 * k, c], heap[2 * k + 1, c])
        updated += cnt
    return updated


@numba.njit(cache=True)
def query_all(heap, B, keys, L, W, X, b, bq, out_idx, out_z, out_ptr):
    """Report ``S_i = {r : <w_r, x_i> > b}`` for every input, sorted, with the values.

    Returns ``(count, nodes_visited, candidates)``; ``count = -1`` when ``out_idx`` is too
    small (the caller grows it and asks again).
    """
    m, n = keys.shape
    d = W.shape[1]
    stack = np.empty(_STACK, dtype=np.int64)
    pos = 0
    visited = 0
    cands = 0
    for i in range(n):
        out_ptr[i] = pos
        visited += 1
        if not heap[1, i] > bq:
            continue
        sp = 1
        stack[0] = 1
        while sp > 0:
            sp -= 1
            k = stack[sp]
            if k < B:
                visited += 2
                if heap[2 * k + 1, i] > bq:
                    stack[sp] = 2 * k + 1
                    sp += 1
                if heap[2 * k, i] > bq:
                    stack[sp] = 2 * k
                    sp += 1
            else:
                j = k - B
                for r in range(j * L, min(m, (j + 1) * L)):
                    visited += 1
                    if keys[r, i] > bq:
                        cands += 1
                        z = 0.0
                        for c in range(d):
                            z += W[r, c] * X[i, c]
                        if z > b:
                            if pos >= out_idx.shape[0]:
                                return -1, visited, cands
                            out_idx[pos] = r
                            out_z[pos] = z
                            pos += 1
    out_ptr[n] = pos
    return pos, visited, cands


def _b_down(b: float) -> np.float32:
    bq = np.float32(b)
    if float(bq) > b:
        bq = np.nextafter(bq, np.float32(-np.inf))
    return bq


class TreeTrainer(SparseTrainer):
    """The paper's search-tree index (see the module docstring).

    Parameters
    ----------
    leaf_size : int
        Neurons per leaf block ``L`` (a power of two; default 8).
    """

    name = "tree"

    def __init__(self, problem, *, step_size=1.0, leaf_size=8):
        L = int(leaf_size)
        if L < 1 or L & (L - 1):
            from sublin_bench.errors import ConfigError

            raise ConfigError(f"leaf_size must be a power of two >= 1, got {leaf_size!r}.")
        self._L = L
        super().__init__(problem, step_size=step_size)

    @staticmethod
    def _heap_leaves(m: int, L: int) -> int:
        nb = -(-m // L)
        return 1 << max(0, (nb - 1).bit_length())

    @classmethod
    def memory_estimate(cls, spec, leaf_size=8) -> int:
        B = cls._heap_leaves(spec.m, leaf_size)
        m, n, d = spec.m, spec.n, spec.d
        fired_guess = 16 * n * 1024  # initial result buffers
        return (
            m * d * spec.itemsize  # W
            + 4 * m * n  # leaf keys
            + 8 * B * n  # internal nodes (2B x n float32)
            + 8 * m  # row norms
            + block_rows(spec) * (d + 2 * n) * 8  # build block
            + fired_guess * 16
        )

    def _keys_for(self, Z: np.ndarray, rownorm: np.ndarray) -> np.ndarray:
        slack = dot_slack(rownorm, self.problem.d, self.problem.dtype)
        return round_up_f32(Z.astype(np.float64) + slack[:, None])

    def _build(self):
        spec = self.problem.spec
        m, n = spec.m, spec.n
        L = self._L
        self._B = self._heap_leaves(m, L)
        self._keys = np.empty((m, n), dtype=np.float32)
        self._rownorm = np.empty(m, dtype=np.float64)
        rows = block_rows(spec)
        for s in range(0, m, rows):
            e = min(m, s + rows)
            Wb = self._W[s:e]
            self._rownorm[s:e] = np.linalg.norm(Wb.astype(np.float64), axis=1)
            self._keys[s:e] = self._keys_for(Wb @ self._XT, self._rownorm[s:e])
        self._heap = np.empty((2 * self._B, n), dtype=np.float32)
        build_heap(self._keys, L, self._heap, self._B)
        self._bq = _b_down(self.problem.b)
        self._out_idx = np.empty(max(1024, 2 * n), dtype=np.int64)
        self._out_z = np.empty_like(self._out_idx, dtype=np.float64)
        ptr, idx, z, work = self._query()
        work["build_inner_products"] = m * n
        return ptr, idx, z, work

    def _query(self):
        n = self.problem.n
        ptr = np.empty(n + 1, dtype=np.int64)
        while True:
            cnt, visited, cands = query_all(
                self._heap, self._B, self._keys, self._L, self._W, self._X,
                float(self.problem.b), self._bq, self._out_idx, self._out_z, ptr,
            )
            if cnt >= 0:
                break
            self._out_idx = np.empty(2 * self._out_idx.size, dtype=np.int64)
            self._out_z = np.empty(self._out_idx.size, dtype=np.float64)
        work = {"tree_nodes_visited": int(visited), "candidates_evaluated": int(cands)}
        return ptr, self._out_idx[:cnt].copy(), self._out_z[:cnt].copy(), work

    def _refresh(self, U, Z_U):
        n = self.problem.n
        rn = np.linalg.norm(self._W[U].astype(np.float64), axis=1)
        self._rownorm[U] = rn
        Knew = self._keys_for(Z_U, rn)
        dirty = np.empty(max(1, U.size), dtype=np.int64)
        updated = update_heap(self._heap, self._B, self._keys, self._L, U, Knew, dirty)
        ptr, idx, z, work = self._query()
        work["leaves_refreshed"] = int(U.size) * n
        work["tree_nodes_updated"] = int(updated) * n
        work["work"] = (
            work["tree_nodes_visited"] + work["candidates_evaluated"]
            + work["leaves_refreshed"] + work["tree_nodes_updated"]
        )
        return ptr, idx, z, work
