"""The neurons of a problem, generated block by block, and their sampled initialisation.

Block-regenerable weights
-------------------------
``W0`` is generated in fixed blocks of :data:`W_BLOCK` neurons. Block ``k`` (rows
``k W_BLOCK .. (k+1) W_BLOCK - 1``) is drawn from its own PCG64 stream, keyed by
``SeedSequence(seed, spawn_key=(stream, k))``: a pure function of ``(seed, k)``, so any
block can be regenerated alone, in any process or on any machine, bit for bit, and
nothing needs ``W0`` in memory. A width-m problem's last block is the first rows of the
full block, so the neurons of a width-m problem are the first m of every wider one with
the same seed (the prefix property). float32 problems are the float64 draws rounded.

The second layer ``a_r`` is a hash of ``(seed, r)`` (SplitMix64, :func:`signs`): any set
of indices costs ``O(len)``, without generating the blocks they lie in.

Sampled initialisation
----------------------
A neuron whose pre-activations all stay at or below ``t0 = b - D0`` (``D0`` the default
band margin, :func:`default_margin`) is not a band candidate for any input; it never
fires, so it never moves, and its row is never needed for training. The candidates of an
i.i.d. ``N(0, I_d)`` first layer can be drawn directly (:func:`sample_candidates`), in
time ``O(m n Q(t0) n d)`` instead of ``O(m n d)``:

1. ``M ~ Binomial(m, n Q(t0))`` proposals (needs ``n Q(t0) <= 1``), at a uniformly random
   ``M``-subset of the indices;
2. for each, an input ``i`` uniformly, ``z`` from the standard normal tail above ``t0``
   (inverse CDF), ``h ~ N(0, I_d)``, and ``w = z x_i + (I - x_i x_i^T) h``;
3. keep ``w`` with probability ``1 / c(w)``, ``c(w) = #{j : <w, x_j> > t0}``.

The density of a kept row is ``n Q(t0) (1/n) sum_i phi(w) 1[<w, x_i> > t0] / Q(t0) / c(w)
= phi(w) 1[c(w) >= 1]``: each index is a candidate independently, with probability
``p = P(max_j <w, x_j> > t0)`` and the conditional law of a Gaussian row given that it is
one. Every other neuron is ``N(0, I)`` conditioned on not being a candidate: block ``k``'s
non-candidate rows are drawn from their own stream by rejection (acceptance ``1 - p``), in
order, so they too are a pure function of ``(seed, k)``. Together the rows are exactly
i.i.d. ``N(0, I_d)`` in distribution, but not the same numbers as the plain generator's:
a plain and a sampled problem with one seed are two draws of one law (see
``Problem.init``).

Why not a library: numpy's generators are used for every draw; what is written here is
only the bookkeeping (which stream, which rows), which no library knows about.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.special import ndtr, ndtri

__all__ = [
    "W_BLOCK", "block_count", "plain_block", "signs", "default_margin", "candidate_threshold",
    "sample_candidates", "Sample", "rejected_rows", "map_blocks", "blocks_in_flight_bytes", "expected_candidates",
]

#: Neurons per generator block (fixed: changing it changes every problem).
W_BLOCK = 1 << 16

# SeedSequence spawn keys of the neuron streams (problem.py holds those of X and y).
STREAM_W, STREAM_SAMPLE, STREAM_REJECT = 2, 4, 5
_SIGN_SALT = 0x5F3759DF  # separates the signs' hash from any other use of the seed

#: Proposals drawn per chunk when sampling (bounds the temporary memory; fixed, since
#: the chunking decides which random numbers go where).
SAMPLE_CHUNK = 1 << 17


def block_count(m: int) -> int:
    return -(-int(m) // W_BLOCK)


def _rng(seed: int, stream: int, k: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream, k))))


def plain_block(seed: int, k: int, rows: int, d: int, dtype="float64", out=None) -> np.ndarray:
    """Rows ``k W_BLOCK .. k W_BLOCK + rows - 1`` of a plain ``W0`` (``rows <= W_BLOCK``),
    written into ``out`` (a C-contiguous ``(rows, d)`` array) when given."""
    rng = _rng(seed, STREAM_W, k)
    if np.dtype(dtype) == np.float64:
        if out is None:
            return rng.standard_normal((rows, d))
        rng.standard_normal(out=out)
        return out
    if out is None:
        return rng.standard_normal((rows, d)).astype(dtype)
    out[...] = rng.standard_normal((rows, d))
    return out


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def signs(seed: int, idx) -> np.ndarray:
    """``a_r`` in {-1, +1} (int8) for the neuron indices ``idx``: the top bit of
    SplitMix64 of ``(seed, r)``. ``O(len(idx))``.

    Examples
    --------
    >>> signs(0, [0, 1, 2, 3]).tolist() == signs(0, [0, 1, 2, 3]).tolist()
    True
    >>> sorted(set(signs(0, range(1000)).tolist()))
    [-1, 1]
    """
    idx = np.asarray(idx, dtype=np.uint64)
    key = _splitmix64(np.array([int(seed) ^ _SIGN_SALT], dtype=np.uint64))[0]
    h = _splitmix64(idx ^ key)
    return (1 - 2 * (h >> np.uint64(63)).astype(np.int8)).astype(np.int8)


def default_margin(b: float) -> float:
    """The band margin ``D = min(0.5, 0.5 / b)`` (0.5 for ``b <= 1``): candidate lists
    about ``exp(b D) ~ 1.65`` times the fired sets, while a neuron must move ``D`` before
    it is re-anchored (see ``sublin_bench.impls.band``)."""
    return 0.5 if b <= 1.0 else 0.5 / b


def candidate_threshold(b: float) -> float:
    """``t0 = b - D0``: a neuron is a candidate when some pre-activation exceeds it."""
    return b - default_margin(b)


class Sample:
    """The candidates of a sampled problem: sorted indices ``idx`` (int64), their rows
    ``W`` (float64) and signs ``a``, the threshold ``t0`` and the number of proposals."""

    __slots__ = ("idx", "W", "a", "t0", "proposals")

    def __init__(self, idx, W, a, t0, proposals):
        self.idx, self.W, self.a, self.t0, self.proposals = idx, W, a, float(t0), int(proposals)


def sampling_rate(n: int, t0: float) -> float:
    """``n Q(t0)``: each index is proposed with this probability (must be <= 1)."""
    return n * float(ndtr(-t0))


def sample_candidates(seed: int, m: int, X: np.ndarray, t0: float) -> Sample:
    """Draw the candidates of a width-m ``N(0, I)`` first layer directly (module
    docstring). ``O(m n Q(t0) (n d + log))`` time, ``O(m n Q(t0) d)`` memory.

    Raises ValueError when ``n Q(t0) > 1`` (the construction needs it at most 1).
    """
    X64 = np.asarray(X, dtype=np.float64)
    n, d = X64.shape
    q = sampling_rate(n, t0)
    if q > 1:
        raise ValueError(f"n Q(t0) = {q:.3g} > 1")
    rng = _rng(seed, STREAM_SAMPLE, 0)
    M = int(rng.binomial(m, q))
    proposed = np.sort(rng.choice(m, size=M, replace=False).astype(np.int64)) if M else np.empty(0, np.int64)
    tail = float(ndtr(-t0))
    keep_idx, keep_W = [], []
    for s in range(0, M, SAMPLE_CHUNK):
        k = min(M, s + SAMPLE_CHUNK) - s
        i = rng.integers(0, n, size=k)
        z = -ndtri(rng.random(k) * tail)  # standard normal conditioned on z > t0
        h = rng.standard_normal((k, d))
        xi = X64[i]
        w = h - np.einsum("kd,kd->k", h, xi)[:, None] * xi + z[:, None] * xi
        c = np.count_nonzero(w @ X64.T > t0, axis=1)
        keep = (c > 0) & (rng.random(k) * np.maximum(c, 1) < 1.0)
        keep_idx.append(proposed[s : s + k][keep])
        keep_W.append(w[keep])
    idx = np.concatenate(keep_idx) if keep_idx else np.empty(0, np.int64)
    W = np.concatenate(keep_W) if keep_W else np.empty((0, d))
    return Sample(idx=idx, W=W, a=signs(seed, idx), t0=t0, proposals=M)


def rejected_rows(seed: int, k: int, count: int, X: np.ndarray, t0: float) -> np.ndarray:
    """``count`` rows of ``N(0, I_d)`` conditioned on ``max_j <w, x_j> <= t0``: the
    non-candidate rows of block ``k`` of a sampled problem, in order, by rejection from
    the block's own stream (deterministic: batches of a fixed rule)."""
    X64 = np.asarray(X, dtype=np.float64)
    d = X64.shape[1]
    rng = _rng(seed, STREAM_REJECT, k)
    out = np.empty((count, d))
    got = 0
    while got < count:
        batch = count - got + 64 + (count - got) // 16
        h = rng.standard_normal((batch, d))
        ok = h[(h @ X64.T).max(axis=1) <= t0] if X64.shape[0] else h
        take = min(len(ok), count - got)
        out[got : got + take] = ok[:take]
        got += take
    return out


def default_workers() -> int:
    """Threads for block work: the cores numba sees (``--threads``), at least 1."""
    try:
        import numba

        return max(1, int(numba.get_num_threads()))
    except Exception:  # pragma: no cover - numba is a dependency
        return max(1, os.cpu_count() or 1)


#: Blocks in flight per worker thread in :func:`map_blocks`.
_WINDOW = 4


def blocks_in_flight_bytes(m: int, bytes_per_row: int) -> int:
    """Memory of the blocks :func:`map_blocks` may hold at once (its look-ahead window on
    every worker, plus the caller's), at ``bytes_per_row`` bytes per neuron of a block."""
    return (default_workers() * _WINDOW + 2) * min(W_BLOCK, int(m)) * int(bytes_per_row)


_PROGRESS: contextvars.ContextVar = contextvars.ContextVar("block_progress", default=None)


@contextlib.contextmanager
def block_progress(callback):
    """Within the block, every :func:`map_blocks` pass without a ``progress`` of its own
    reports ``callback(done, total)`` (the CLI's progress bar for builds)."""
    token = _PROGRESS.set(callback)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def map_blocks(fn, m: int, *, workers: int | None = None, progress=None):
    """``[fn(k, start, stop) for every block k]`` in block order, run on ``workers``
    threads (numpy's generators and BLAS release the GIL, so blocks run in parallel);
    ``progress(done, total)`` is called as blocks finish (from the calling thread).

    BLAS is limited to one thread inside the pool, so the pool's threads do not
    oversubscribe the cores; the previous limits are restored afterwards.
    """
    from threadpoolctl import threadpool_limits

    total = block_count(m)
    progress = progress or _PROGRESS.get()
    workers = default_workers() if workers is None else max(1, int(workers))
    spans = [(k, k * W_BLOCK, min(m, (k + 1) * W_BLOCK)) for k in range(total)]
    if workers == 1 or total == 1:
        out = []
        for j, (k, a, b) in enumerate(spans, 1):
            out.append(fn(k, a, b))
            if progress:
                progress(j, total)
        return out
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=workers) as pool:
        futures = []
        window = _WINDOW * workers  # bounded look-ahead: at most this many blocks in memory
        out = []
        for span in spans:
            futures.append(pool.submit(fn, *span))
            if len(futures) - len(out) >= window:
                out.append(futures[len(out)].result())
                if progress:
                    progress(len(out), total)
        for f in futures[len(out):]:
            out.append(f.result())
            if progress:
                progress(len(out), total)
    return out


def expected_candidates(m: int, n: int, t0: float) -> float:
    """An upper bound on the expected number of candidates, ``m min(1, n Q(t0))``."""
    return m * min(1.0, sampling_rate(n, t0))
