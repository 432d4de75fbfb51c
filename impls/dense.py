"""``dense``: the reference implementation.

Every step touches every neuron with BLAS matrix products, blocked over m so that memory
stays ``O(m d)`` (the weights) plus ``O(m n)`` bytes (the 0/1 activation matrix) plus one
block, however large m is.

Per-iteration cost ``O(m n d + m n^2 + n^3)``:

* update: ``ΔW_B = -(eta / sqrt m) diag(a_B) A_B (diag(g) X)``, a (B, n) x (n, d) product
  per block;
* refresh: ``Z_B = W_B X^T``, ``A_B = Z_B > b``, ``f += a_B^T relu(Z_B - b) / sqrt m`` and
  the intersection counts ``C += A_B^T A_B`` for the next step, all in the same pass.

The work arrays of one block are allocated once per trainer and written with ``out=``, so
the loop over blocks allocates nothing (no page faults, no allocator state that changes
timings from one point of a sweep to the next). The neurons the next update moves (those
firing for some input) are counted from row sums of the 0/1 block the counts are built
from, a matrix-vector product, in place of a row-wise ``any``.
"""

from __future__ import annotations

import math

import numpy as np

from sublin_bench.interface import Trainer, UpdateResult
from sublin_bench.linalg import csr_from_mask

#: Target bytes of one block's working arrays; about L2-sized blocks keep BLAS efficient.
_BLOCK_BYTES = 4 << 20


def block_rows(spec) -> int:
    """Rows of W per block: a few MiB of (W_B, Z_B) at the working precision."""
    per_row = (spec.d + 2 * spec.n) * spec.itemsize + spec.n
    return int(max(256, min(spec.m, _BLOCK_BYTES // per_row)))


class DenseTrainer(Trainer):
    """Dense reference: BLAS, closed-form Gram, blocked over m.

    Notes
    -----
    Memory: ``8 m d`` (float64) or ``4 m d`` (float32) bytes for the weights, ``m n`` bytes
    for the activation matrix, and one block of a few MiB.
    """

    name = "dense"
    sublinear = False
    #: Array module: numpy here, cupy in the GPU subclass (impls/cupy_dense.py).
    xp = np

    def __init__(self, problem, *, step_size=1.0, block=None):
        super().__init__(problem, step_size=step_size)
        spec = problem.spec
        xp = self.xp
        self._block = int(block) if block else block_rows(spec)
        self._W = xp.array(problem.W0, dtype=spec.dtype, copy=True)
        self._A = xp.empty((spec.m, spec.n), dtype=bool)
        self._a64 = xp.asarray(problem.a.astype(np.float64))
        self._X = xp.asarray(problem.X)
        self._X64 = self._X.astype(np.float64)
        self._XT = xp.ascontiguousarray(self._X.T)
        self._bt = problem.X.dtype.type(problem.b)
        self._sqrt_m = math.sqrt(spec.m)
        self._allocate_buffers()
        self._firing = 0  # neurons that fire for some input: the next update moves them
        import time

        t0 = time.perf_counter()
        self._f, self._C = self._refresh(None, None)
        self._sync()
        self.build_seconds = time.perf_counter() - t0

    def _host(self, arr):
        """A host numpy copy (identity for numpy arrays)."""
        return arr

    @classmethod
    def memory_estimate(cls, spec) -> int:
        rows = block_rows(spec)
        return spec.m * spec.d * spec.itemsize + spec.m * spec.n + rows * (spec.d + 3 * spec.n) * 8

    def _blocks(self):
        m, B = self.problem.m, self._block
        for start in range(0, m, B):
            yield slice(start, min(m, start + B))

    def _allocate_buffers(self):
        """Per-block work arrays, allocated once and reused by every pass (the last,
        shorter block uses views of their first rows): no allocation inside the loop."""
        xp, spec = self.xp, self.problem.spec
        B, n, d = min(self._block, spec.m), spec.n, spec.d
        cdt = np.float32 if spec.m <= (1 << 24) else np.float64  # exact counts
        self._ones = xp.ones(n, dtype=cdt)
        self._buf = {
            "Af": xp.empty((B, n), dtype=spec.dtype),  # scaled activations of the update
            "delta": xp.empty((B, d), dtype=spec.dtype),
            "Z": xp.empty((B, n), dtype=spec.dtype),
            "Anew": xp.empty((B, n), dtype=bool),
            "diff": xp.empty((B, n), dtype=bool),
            "Ac": xp.empty((B, n), dtype=cdt),  # 0/1 for the counts
            "rowsum": xp.empty(B, dtype=cdt),
        }

    def _refresh(self, GX, scale):
        """One pass over m: optionally apply the update, then recompute A, f and C.

        Returns ``(f, C)`` and, through ``self._last_flips`` / ``_last_moved``, the
        number of flipped activations and moved neurons of the update. The neurons that
        fire for some input (those the next update moves) are counted here, from the row
        sums of the 0/1 matrix the counts are built from.
        """
        n = self.problem.n
        xp = self.xp
        f = xp.zeros(n, dtype=np.float64)
        C = xp.zeros((n, n), dtype=np.float64)
        flips = 0
        firing = 0
        for sl in self._blocks():
            Wb = self._W[sl]
            Ab = self._A[sl]
            rows = Wb.shape[0]
            b = self._buf if rows == len(self._buf["Z"]) else {k: v[:rows] for k, v in self._buf.items()}
            if GX is not None:
                Af, delta = b["Af"], b["delta"]
                xp.multiply(Ab, scale[sl, None], out=Af)  # diag(a_B) A_B, scaled
                xp.matmul(Af, GX, out=delta)
                Wb += delta
            Z, Anew = b["Z"], b["Anew"]
            xp.matmul(Wb, self._XT, out=Z)
            xp.greater(Z, self._bt, out=Anew)
            if GX is not None:
                flips += int(xp.count_nonzero(xp.not_equal(Anew, Ab, out=b["diff"])))
            Z -= self._bt
            xp.maximum(Z, 0, out=Z)
            f += self._a64[sl] @ Z.astype(np.float64, copy=False)
            Ac = b["Ac"]
            Ac[...] = Anew
            C += Ac.T @ Ac
            firing += int(xp.count_nonzero(xp.matmul(Ac, self._ones, out=b["rowsum"])))
            Ab[...] = Anew
        self._last_flips, self._last_moved = flips, self._firing
        self._firing = firing
        return self._host(f / self._sqrt_m), self._host(C)

    def _predictions(self):
        return self._f

    def _counts(self):
        return self._C

    def _fired_sizes(self):
        return np.diagonal(self._C)  # formed by every pass anyway

    def _update(self, g):
        eta = self.step_size
        g = self.xp.asarray(g)
        GX = (g[:, None] * self._X64).astype(self._W.dtype)
        scale = ((-eta / self._sqrt_m) * self._a64).astype(self._W.dtype)
        self._f, self._C = self._refresh(GX, scale)
        m, n = self.problem.m, self.problem.n
        work = {"neurons_touched": 2 * m, "work": 2 * m * n}
        return UpdateResult(flips=self._last_flips, moved=self._last_moved, work=work)

    def active_sets(self):
        return csr_from_mask(self._host(self._A).T)

    def weights(self):
        return self._host(self._W).copy()
