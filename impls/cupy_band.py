"""``cupy``: the sublinear method on an NVIDIA GPU, built on the band index.

Why the band index and not the tree: a max-tree query is a depth-first walk per input,
with divergent branches and dependent loads, which a GPU runs poorly. The band index is
flat data: candidate lists as one segmented array (entries sorted by input, then neuron),
so every per-step operation is a data-parallel primitive: gather-and-dot of the moved
candidates, a threshold test, a segmented sum for the predictions, a small GEMM for the
update and for re-anchoring, and a sort only when neurons are re-anchored.

The algorithm is written once against an array module ``xp``: :class:`ArrayBandTrainer`
runs it with numpy (which is how CI, with no GPU, tests every line of it against
``dense``), :class:`CupyBandTrainer` with CuPy. Invariant and margin are those of
:mod:`impls.band`.

Per step: ``O(K + C + |U| (n + d) + |R| n d)`` with K fired pairs, C candidates, U moved
and R re-anchored neurons. The flag array ``moved`` (m bytes, allocated at build) is set
and cleared at the moved rows only.
"""

from __future__ import annotations

import math
import time

import numpy as np

from sublin_bench.impls._gpu import check_device_fits, cupy_status, require_cupy
from sublin_bench.impls.band import _DRIFT_SAFETY, resolve_margin
from sublin_bench.impls.dense import block_rows
from sublin_bench.interface import Trainer, UpdateResult
from sublin_bench.linalg import indptr_from_counts


class ArrayBandTrainer(Trainer):
    """The band method in whole-array operations (numpy here; CuPy in the subclass)."""

    name = "array-band"
    sublinear = True
    xp = np

    def __init__(self, problem, *, step_size=1.0, margin=None):
        super().__init__(problem, step_size=step_size)
        D = self.margin = resolve_margin(margin, problem.b)
        xp = self.xp
        spec = problem.spec
        self._m, self._n, self._d = spec.m, spec.n, spec.d
        self._u = float(np.finfo(spec.dtype).eps) / 2
        self._sqrt_m = math.sqrt(spec.m)
        t0 = time.perf_counter()
        self._W = xp.array(problem.W0, dtype=spec.dtype, copy=True)
        self._anchor = self._W.copy()
        self._X = xp.asarray(problem.X)
        self._X64 = self._X.astype(np.float64)
        self._XT = xp.ascontiguousarray(self._X.T)
        self._a64 = xp.asarray(problem.a.astype(np.float64))
        self._moved = xp.zeros(spec.m, dtype=bool)
        rows, idx, z = [], [], []
        B = block_rows(spec)
        for s in range(0, spec.m, B):
            Z = self._W[s : s + B] @ self._XT
            r, i = xp.nonzero(Z > problem.b - D)
            rows.append(i)
            idx.append(r + s)
            z.append(Z[r, i].astype(np.float64))
        self._set_candidates(xp.concatenate(rows), xp.concatenate(idx), xp.concatenate(z))
        self._derive()
        self._sync()
        self.build_seconds = time.perf_counter() - t0

    # -- helpers ------------------------------------------------------------------------

    def _host(self, arr):
        return arr

    def _set_candidates(self, rows, idx, z):
        """Store candidate entries sorted by (input, neuron)."""
        order = self.xp.lexsort(self.xp.stack([idx, rows]))
        self._crow, self._cidx, self._cz = rows[order], idx[order], z[order]

    def _derive(self):
        """Fired pairs, predictions, the moved set and the counts from the candidates."""
        xp = self.xp
        fired = self._cz > self.problem.b
        self._frow, self._fidx, self._fz = self._crow[fired], self._cidx[fired], self._cz[fired]
        contrib = self._a64[self._fidx] * (self._fz - self.problem.b)
        self._f = xp.bincount(self._frow, weights=contrib, minlength=self._n) / self._sqrt_m
        U, inv = xp.unique(self._fidx, return_inverse=True)
        A_U = xp.zeros((U.size, self._n), dtype=np.float64)
        A_U[inv.reshape(-1), self._frow] = 1.0
        self._U, self._A_U = U, A_U
        self._C = A_U.T @ A_U

    # -- Trainer ------------------------------------------------------------------------

    def _predictions(self):
        return self._host(self._f)

    def _counts(self):
        return self._host(self._C)

    def _update(self, g):
        xp = self.xp
        b, D, n = self.problem.b, self.margin, self._n
        U, A_U = self._U, self._A_U
        coef = -self.step_size / self._sqrt_m
        old_keys = self._frow * self._m + self._fidx
        # the update of the fired neurons: one small GEMM
        GX = xp.asarray(g, dtype=np.float64)[:, None] * self._X64
        delta = (coef * self._a64[U])[:, None] * (A_U @ GX)
        self._W[U] = (self._W[U].astype(np.float64) + delta).astype(self._W.dtype)
        # drift test and re-anchoring (module sublin_bench.impls.band explains the threshold)
        W_U = self._W[U].astype(np.float64)
        A_anchor = self._anchor[U].astype(np.float64)
        drift = xp.linalg.norm(W_U - A_anchor, axis=1)
        e = 2.0 * (self._d + 2) * self._u * (xp.maximum(xp.linalg.norm(W_U, axis=1), xp.linalg.norm(A_anchor, axis=1)) + D)
        R = U[drift > (D - 2 * e) * (1 - _DRIFT_SAFETY)]
        self._moved[U] = True
        # gather-and-dot: re-evaluate the candidates whose neuron moved
        hit = xp.nonzero(self._moved[self._cidx])[0]
        if hit.size:
            r, i = self._cidx[hit], self._crow[hit]
            self._cz[hit] = xp.einsum("ij,ij->i", self._W[r], self._X[i], dtype=np.float64)
        self._moved[U] = False
        if R.size:
            self._anchor[R] = self._W[R]
            self._moved[R] = True
            keep = ~self._moved[self._cidx]
            self._moved[R] = False
            Zbar = (self._W[R] @ self._XT).astype(np.float64)
            rr, ii = xp.nonzero(Zbar > b - D)
            self._set_candidates(
                xp.concatenate([self._crow[keep], ii]),
                xp.concatenate([self._cidx[keep], R[rr]]),
                xp.concatenate([self._cz[keep], Zbar[rr, ii]]),
            )
        self._derive()
        new_keys = self._frow * self._m + self._fidx
        both = xp.sort(xp.concatenate([old_keys, new_keys]))
        common = int(xp.count_nonzero(both[1:] == both[:-1])) if both.size > 1 else 0
        flips = int(old_keys.size + new_keys.size - 2 * common)
        work = {
            "candidates_scanned": int(self._cidx.size),
            "candidates_evaluated": int(hit.size),
            "neurons_reanchored": int(R.size),
            "neurons_moved": int(U.size),
            "work": int(self._cidx.size + hit.size + U.size + R.size * n),
        }
        return UpdateResult(flips=flips, moved=int(U.size), work=work)

    def active_sets(self):
        counts = np.bincount(self._host(self._frow), minlength=self._n)
        return indptr_from_counts(counts), self._host(self._fidx).astype(np.int64)

    def weights(self):
        return self._host(self._W).copy()

    @classmethod
    def memory_estimate(cls, spec, margin=None) -> int:
        from sublin_bench.impls.band import BandTrainer

        return BandTrainer.memory_estimate(spec, margin)


class CupyBandTrainer(ArrayBandTrainer):
    """The band method on an NVIDIA GPU with CuPy (see the module docstring)."""

    name = "cupy"

    def __init__(self, problem, *, step_size=1.0, margin=None):
        self.xp = require_cupy()
        check_device_fits(self.xp, ArrayBandTrainer.memory_estimate(problem.spec, margin),
                          f"cupy for {problem.spec.describe()}")
        super().__init__(problem, step_size=step_size, margin=margin)

    @classmethod
    def available(cls):
        cp, reason = cupy_status()
        return cp is not None, reason

    @classmethod
    def memory_estimate(cls, spec, margin=None) -> int:
        return 64 * spec.n * spec.n  # host side: the per-step transfers only

    def _host(self, arr):
        return self.xp.asnumpy(arr)

    def _sync(self):
        self.xp.cuda.get_current_stream().synchronize()
