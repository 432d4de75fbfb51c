"""``lsh``: an approximate implementation in the SLIDE / MONGOOSE design.

The practical systems that "touch only the neurons that fire" (SLIDE, MLSys 2020;
MONGOOSE, ICLR 2021) find them with locality-sensitive hash tables instead of exact
search trees. This implementation puts that design on the same problem, behind the same
interface, so that exactness and approximation can be compared side by side.

Hashing
-------
The shifted-ReLU test is an inner-product test on augmented vectors:
``<w_r, x_i> > b  <=>  <p_r, q_i> > 0`` with ``p_r = [w_r, -b]`` and ``q_i = [x_i, 1]``.
SimHash (signed random projections; Charikar, STOC 2002) with ``K`` Gaussian hyperplanes
``h`` per table gives each vector a ``K``-bit code ``sign(<h, v>)``; two vectors collide
on one bit with probability ``1 - theta / pi``, ``theta`` their angle, so neurons at a
small angle to the query share its bucket more often. ``L`` tables with independent
hyperplanes; a query retrieves the union of its ``L`` buckets.

Every retrieved neuron is verified exactly (``<w_r, x_i> > b``, ``d`` flops, the same
evaluation order as ``band``), so a reported neuron always fires (precision 1); a firing
neuron that shares no bucket with the query is missed. The fired sets, predictions,
Gram matrix and update are those of the *found* sets (:mod:`impls._sparse`): the step is
an approximate Gauss-Newton step, and its trajectory drifts from ``dense``'s. The
harness measures the recall and that drift (:mod:`sublin_bench.conformance`,
``compare_approximate``); it does not assert equality.

What the geometry allows (why recall is expensive here)
------------------------------------------------------
A neuron that just fires has ``<p_r, q_i>`` slightly above 0, an angle just under
``pi / 2``: it collides on a bit with probability about 0.5. A typical neuron that does
not fire (``z ~ N(0, 1)``, far below ``b``) has ``cos theta ≈ -b / (sqrt 2 sqrt(d + b^2))``,
about -0.39 at n = d = 32, m = 2^20, alpha = 0.5: it collides with probability about
0.37. With so little separation, a recall of 0.9 needs ``p1^K`` large enough that a
large fraction of all neurons is retrieved too (the collision model: 70% of the neurons
per query at K = 2, L = 8; 21% at K = 8, L = 512). The defaults are the fastest setting
of a measured search that reaches the 0.9 target (``benchmarks/lsh_search.py``; the
numbers are in README.md, "Exact against approximate").

Tables, updates and rebuilds (flat arrays, numba)
-------------------------------------------------
* ``codes`` (L, m): every neuron's current code in every table (uint8 for K <= 8,
  uint16 for K <= 16);
* ``order`` (L, m) and ``start`` (L, 2^K + 1): each table as buckets, the neurons sorted
  by the code they had at the last rebuild (a counting sort);
* the neurons whose code changed since the last rebuild (``dirty``), checked against
  the query's codes one by one.

After a step, the moved neurons are re-hashed (``L K (d + 1)`` flops each) and their new
codes written; a static bucket entry whose neuron's current code no longer matches is
skipped, and the dirty neurons are retrieved wherever their current code matches, so
the tables always answer for the *current* weights. The dirty list costs ``L`` code
comparisons per dirty neuron per query, so the tables are rebuilt (counting sort,
``O(L m)``) when the fraction of changed hash bits since the last rebuild,
``sum popcount(old ^ new) / (m K L)``, passes ``rebuild_threshold`` (MONGOOSE's trigger:
rebuild when the hash codes have moved, not on a fixed schedule).

Why no library: FALCONN and similar LSH libraries index static point sets for
nearest-neighbour queries and offer neither in-place re-hashing of moved points nor the
verified threshold test; faiss's LSH index has no per-item update. The tables here are
a few dozen lines of numba over flat arrays, like the other implementations.

Queries are answered together: the retrieval marks, per neuron, a bit for every query
that retrieved it (``hits``, ``m ceil(n / 64)`` words); the verification then walks the
marked neurons in memory order and reads each retrieved row of W once for all its
queries. Verifying query by query instead reads rows in bucket order, a cache miss each:
at m = 2^20, K = 2, L = 8 (66% of the neurons retrieved per query) 1.7 s against 0.24 s.

Per-iteration work: the hash codes of the n queries (``n L K (d + 1)``), the moved
neurons' re-hash, the bucket entries walked and the distinct pairs verified (counted as
``buckets_walked`` and ``candidates_evaluated``), and one pass over the marks (``m``
words). The walk is proportional to m at any (K, L) that reaches a useful recall in this
regime, so ``lsh`` is not sublinear (``sublinear = False``).
"""

from __future__ import annotations

import numba
import numpy as np

from sublin_bench.impls._sparse import SparseTrainer
from sublin_bench.impls.dense import block_rows
from sublin_bench.errors import ConfigError

#: Defaults, from the search in benchmarks/lsh_search.py (README.md, "Exact against approximate").
DEFAULT_K = 1
DEFAULT_L = 6
DEFAULT_REBUILD = 0.002


def _positive_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}.")
    return int(value)


def validate_options(bits, tables, rebuild_threshold) -> tuple[int, int, float]:
    """``(K, L, threshold)`` checked: K in [1, 16] bits, L in [1, 4096] tables, threshold
    in (0, 1]."""
    K = _positive_int("bits (K, hash bits per table)", bits, 1, 16)
    L = _positive_int("tables (L)", tables, 1, 4096)
    try:
        thr = float(rebuild_threshold)
    except (TypeError, ValueError):
        raise ConfigError(f"rebuild_threshold must be a number in (0, 1], got {rebuild_threshold!r}.") from None
    if not (0 < thr <= 1):
        raise ConfigError(f"rebuild_threshold must be a number in (0, 1], got {rebuild_threshold!r}.")
    return K, L, thr


def hash_codes(V: np.ndarray, last: float, H: np.ndarray, K: int, L: int, dtype) -> np.ndarray:
    """SimHash codes of the augmented rows ``[V, last]``: ``(L, len(V))`` codes of ``K``
    bits, bit k of table l set when ``<h_{lK+k}, [v, last]> > 0``."""
    P = V @ H[:, :-1].T
    P += last * H[:, -1]
    bits = (P > 0).reshape(V.shape[0], L, K)
    codes = (bits << np.arange(K, dtype=np.uint32)).sum(axis=2, dtype=np.uint32)
    return np.ascontiguousarray(codes.T, dtype=dtype)


@numba.njit(cache=True)
def build_tables(codes, nb):
    """Counting sort of every table: ``order[l]`` the neurons by code, ``start[l, c]`` the
    first of bucket ``c``. ``O(L (m + 2^K))``."""
    L, m = codes.shape
    order = np.empty((L, m), dtype=np.int64)
    start = np.zeros((L, nb + 1), dtype=np.int64)
    for l in range(L):
        for r in range(m):
            start[l, codes[l, r] + 1] += 1
        for c in range(nb):
            start[l, c + 1] += start[l, c]
        pos = start[l, :nb].copy()
        for r in range(m):
            c = codes[l, r]
            order[l, pos[c]] = r
            pos[c] += 1
    return order, start


@numba.njit(cache=True)
def rehash_moved(codes, U, new, dirty_flag, dirty, ndirty):
    """Write the moved neurons' new codes; return the number of changed bits and the new
    length of the dirty list (neurons whose code changed since the last rebuild)."""
    L = codes.shape[0]
    changed = 0
    for t in range(U.shape[0]):
        r = U[t]
        diff = False
        for l in range(L):
            x = np.int64(codes[l, r]) ^ np.int64(new[l, t])
            if x != 0:
                diff = True
                while x:
                    changed += x & 1
                    x >>= 1
                codes[l, r] = new[l, t]
        if diff and not dirty_flag[r]:
            dirty_flag[r] = True
            dirty[ndirty] = r
            ndirty += 1
    return changed, ndirty


@numba.njit(cache=True)
def retrieve(qcodes, codes, order, start, dirty, hits):
    """Mark in ``hits`` (m, ceil(n / 64)) bit ``i`` of every neuron that shares a bucket
    with query ``i`` in some table, for every query; return the bucket entries walked.
    Stale static entries (the neuron's current code differs) are skipped; neurons re-hashed
    since the rebuild are matched from the dirty list."""
    n, L = qcodes.shape
    walked = 0
    for i in range(n):
        w = i >> 6
        bit = np.uint64(1) << np.uint64(i & 63)
        for l in range(L):  # the query's bucket in every table
            c = qcodes[i, l]
            for p in range(start[l, c], start[l, c + 1]):
                r = order[l, p]
                if codes[l, r] == c:
                    hits[r, w] |= bit
            walked += start[l, c + 1] - start[l, c]
        for p in range(dirty.shape[0]):
            r = dirty[p]
            for l in range(L):
                if codes[l, r] == qcodes[i, l]:
                    hits[r, w] |= bit
                    break
        walked += dirty.shape[0]
    return walked


@numba.njit(cache=True)
def _row_dots(W, r, XT, zr):
    """``zr[i] = <w_r, x_i>`` for every input, summed over ``c`` ascending."""
    d, n = XT.shape
    zr[:] = 0.0
    for c in range(d):
        wc = np.float64(W[r, c])
        for i in range(n):
            zr[i] += wc * XT[c, i]


@numba.njit(cache=True)
def verify(hits, W, XT, b, ii, rr, zz):
    """Evaluate ``<w_r, x_i>`` exactly for every pair marked in ``hits``, neuron by neuron,
    so that each retrieved row of W is read once, in memory order, for all the queries
    that retrieved it; write the pairs above ``b`` into ``(ii, rr, zz)`` (input, neuron,
    z) while they fit. Returns the number of such pairs (which may exceed the arrays:
    then the caller grows them and calls again) and the number of pairs evaluated.

    A neuron's inner products are computed for all n inputs at once (the loop over inputs
    innermost, so it vectorises; each ``z_ri`` is still summed over ``c`` ascending, the
    order of every other evaluation here), and only the marked ones are used: one
    dependent chain of d additions per pair would be latency-bound. The output arrays come
    from the caller: growing them inside the loop keeps numba from vectorising it (7x
    slower, measured)."""
    m, nw = hits.shape
    d, n = XT.shape
    cap = ii.shape[0]
    zr = np.empty(n)
    k = 0
    evaluated = 0
    for r in range(m):
        any_ = False
        for w in range(nw):
            any_ |= hits[r, w] != 0
        if not any_:
            continue
        _row_dots(W, r, XT, zr)
        for w in range(nw):
            h = hits[r, w]
            base = w * 64
            for t in range(min(64, n - base)):
                if not (h >> np.uint64(t)) & np.uint64(1):
                    continue
                i = base + t
                evaluated += 1
                if zr[i] > b:
                    if k < cap:
                        ii[k] = i
                        rr[k] = r
                        zz[k] = zr[i]
                    k += 1
    return k, evaluated


@numba.njit(cache=True)
def by_input(ii, rr, zz, n):
    """Pairs in neuron order -> CSR by input (a stable counting sort, so the neurons stay
    ascending within each row)."""
    k = ii.shape[0]
    ptr = np.zeros(n + 1, dtype=np.int64)
    for q in range(k):
        ptr[ii[q] + 1] += 1
    for i in range(n):
        ptr[i + 1] += ptr[i]
    pos = ptr[:n].copy()
    idx = np.empty(k, dtype=np.int64)
    zs = np.empty(k, dtype=np.float64)
    for q in range(k):
        p = pos[ii[q]]
        idx[p] = rr[q]
        zs[p] = zz[q]
        pos[ii[q]] += 1
    return ptr, idx, zs


class LSHTrainer(SparseTrainer):
    """Approximate: SimHash tables over ``[w_r, -b]``, queried with ``[x_i, 1]``; retrieved
    neurons verified exactly.

    Parameters
    ----------
    bits : int
        ``K``, hash bits per table (1 .. 16). Default :data:`DEFAULT_K`.
    tables : int
        ``L``, the number of tables (1 .. 4096). Default :data:`DEFAULT_L`.
    rebuild_threshold : float
        Rebuild the tables when the fraction of changed hash bits since the last rebuild
        passes this (0 .. 1]. Default :data:`DEFAULT_REBUILD`.
    hash_seed : int, optional
        Seed of the hyperplanes; defaults to the problem's seed (a stream of its own).
    neuron_order : {"given", "firing"}
        ``"given"`` by default: the firing-first order needs an exact pass over every
        neuron, which an LSH build does not otherwise make.
    """

    name = "lsh"
    exact = False
    sublinear = False

    def __init__(self, problem, *, step_size=1.0, bits=DEFAULT_K, tables=DEFAULT_L,
                 rebuild_threshold=DEFAULT_REBUILD, hash_seed=None, neuron_order="given"):
        self.K, self.L, self.rebuild_threshold = validate_options(bits, tables, rebuild_threshold)
        seed = problem.spec.seed if hash_seed is None else hash_seed
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"hash_seed must be a non-negative integer, got {hash_seed!r}.")
        self.hash_seed = int(seed)
        self.rebuilds = 0
        super().__init__(problem, step_size=step_size, neuron_order=neuron_order)

    @classmethod
    def memory_estimate(cls, spec, bits=DEFAULT_K, tables=DEFAULT_L, **_) -> int:
        K, L = int(bits), int(tables)
        code_bytes = 1 if K <= 8 else 2
        return int(
            spec.m * spec.d * spec.itemsize  # W
            + spec.m * L * (code_bytes + 8)  # codes and bucket order
            + spec.m * (8 * -(-spec.n // 64) + 8 + 1)  # query marks, dirty list and flags
            + L * ((1 << K) + 1) * 8
            + block_rows(spec) * L * K * 9  # one block of projections and bits
            + 16 * spec.m * spec.n * 0.05  # found pairs (generous: a few % of m n)
        )

    def _hash(self, V: np.ndarray, last: float) -> np.ndarray:
        return hash_codes(np.asarray(V, dtype=np.float64), last, self._H, self.K, self.L, self._code_dtype)

    def _rebuild(self):
        self._order, self._start = build_tables(self._codes, 1 << self.K)
        self._dirty_flag[self._dirty[: self._ndirty]] = False
        self._ndirty = 0
        self._changed_bits = 0
        self.rebuilds += 1

    def _query(self):
        q = self._hash(self._X64, 1.0)  # (L, n) codes of [x_i, 1]
        walked = retrieve(np.ascontiguousarray(q.T), self._codes, self._order, self._start,
                          self._dirty[: self._ndirty], self._hits)
        b = float(self.problem.b)
        while True:
            k, ev = verify(self._hits, self._W, self._XT64, b, *self._found)
            if k <= self._found[0].size:
                break
            self._found = tuple(np.empty(2 * k, dtype=t) for t in (np.int64, np.int64, np.float64))
        self._hits[:] = 0
        ptr, idx, z = by_input(*(a[:k] for a in self._found), self.problem.n)
        return ptr, idx, z, int(walked), int(ev)

    def _build(self):
        spec = self.problem.spec
        m, d = self._W.shape
        rng = np.random.default_rng([self.hash_seed, 0x51A1])  # a stream of its own
        self._H = rng.standard_normal((self.L * self.K, d + 1))
        self._code_dtype = np.uint8 if self.K <= 8 else np.uint16
        self._codes = np.empty((self.L, m), dtype=self._code_dtype)
        rows = block_rows(spec)
        b = float(self.problem.b)
        for s in range(0, m, rows):
            self._codes[:, s : s + rows] = self._hash(self._W[s : s + rows], -b)
        self._XT64 = np.ascontiguousarray(self._X64.T)
        self._found = tuple(np.empty(1024, dtype=t) for t in (np.int64, np.int64, np.float64))
        self._hits = np.zeros((m, -(-spec.n // 64)), dtype=np.uint64)
        self._dirty = np.empty(m, dtype=np.int64)
        self._dirty_flag = np.zeros(m, dtype=np.bool_)
        self._ndirty = 0
        self.rebuilds = -1  # the first build is not a rebuild
        self._rebuild()
        ptr, idx, z, walked, ev = self._query()
        work = {"build_hashes": m * self.L * self.K, "buckets_walked": walked, "candidates_evaluated": ev}
        return ptr, idx, z, work

    def _refresh(self, g, coef):
        U = self._U
        new = self._hash(self._W[U], -float(self.problem.b))
        changed, self._ndirty = rehash_moved(self._codes, U, new, self._dirty_flag, self._dirty, self._ndirty)
        self._changed_bits += int(changed)
        rebuilt = 0
        m = self._W.shape[0]
        if self._changed_bits > self.rebuild_threshold * m * self.K * self.L:
            self._rebuild()
            rebuilt = 1
        ptr, idx, z, walked, ev = self._query()
        work = {
            "hashes": (int(U.size) + self.problem.n) * self.L * self.K,
            "buckets_walked": walked,
            "candidates_evaluated": ev,
            "hash_bits_changed": int(changed),
            "rebuilds": rebuilt,
            "work": walked + ev + int(U.size) * self.L,
        }
        return ptr, idx, z, work
