"""``dense-stream``: the exact dense step, computed block by block from regenerated rows.

The reference for widths whose weights do not fit in memory. Every step makes one pass
over the generator's blocks of ``W0`` (:mod:`sublin_bench.generator`: any block is a pure
function of the seed), overwrites the rows of the neurons that have moved so far with
their stored current values, and computes ``Z_B = W_B X^T``, the activations, the
predictions and the counts ``|S_i ∩ S_j|`` exactly as ``dense`` does, on every core.
Only the neurons that fire are kept from a pass (their rows and activation rows), which
is all the next update needs: ``ΔW_U = -(eta / sqrt m) diag(a_U) A_U (diag(g) X)``.

Memory ``O(moved d + fired n + n^2)`` plus one block per thread; per-iteration cost
``O(m n d)`` with the generation of ``m d`` normal numbers (about 2^27 a second on two
cores here), so it is a reference, not a contender. ``sublin-bench verify --reference
dense-stream`` checks an implementation against it where ``dense`` does not fit.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.special import ndtr

from sublin_bench.generator import blocks_in_flight_bytes
from sublin_bench.impls._sparse import _symdiff_total
from sublin_bench.interface import Trainer, UpdateResult
from sublin_bench.linalg import indptr_from_counts


class DenseStreamTrainer(Trainer):
    """Dense reference over regenerated blocks (see the module docstring)."""

    name = "dense-stream"
    sublinear = False
    holds_problem_weights = False

    def __init__(self, problem, *, step_size=1.0):
        super().__init__(problem, step_size=step_size)
        spec = problem.spec
        self._XT = np.ascontiguousarray(problem.X.T)
        self._X64 = problem.X.astype(np.float64)
        self._bt = problem.X.dtype.type(problem.b)
        self._sqrt_m = math.sqrt(spec.m)
        self._moved_idx = np.empty(0, dtype=np.int64)  # sorted neuron indices that have moved
        self._moved_W = np.empty((0, spec.d), dtype=spec.dtype)  # their current rows
        t0 = time.perf_counter()
        self._pass()
        self.build_seconds = time.perf_counter() - t0

    @classmethod
    def memory_estimate(cls, spec) -> int:
        fire = min(1.0, spec.n * float(ndtr(-spec.threshold)))  # P(a neuron fires for some input)
        K = spec.m * fire
        per_row = 4 * (spec.d * spec.itemsize + 8) + spec.n  # moved store (old, new), union rows, activations
        return int(K * per_row + blocks_in_flight_bytes(spec.m, (spec.d + 3 * spec.n) * 8))

    def _pass(self):
        """One pass over every block: the fired neurons ``U`` with their rows and
        activations, the predictions and the counts."""
        midx, mW, XT, bt = self._moved_idx, self._moved_W, self._XT, self._bt
        n = self.problem.n

        def block(start, Wb, ab):
            lo, hi = np.searchsorted(midx, [start, start + len(Wb)])
            if hi > lo:
                Wb[midx[lo:hi] - start] = mW[lo:hi]
            Z = Wb @ XT
            A = Z > bt
            rows = np.flatnonzero(A.any(axis=1))
            Zr = Z[rows] - bt
            np.maximum(Zr, 0, out=Zr)
            Ar = A[rows]
            Ac = Ar.astype(np.float64)
            return rows + start, Wb[rows], ab[rows], Ar, ab[rows].astype(np.float64) @ Zr.astype(np.float64), Ac.T @ Ac

        parts = self.problem.map_blocks(block)
        self._U = np.concatenate([p[0] for p in parts]).astype(np.int64)
        self._WU = np.concatenate([p[1] for p in parts])
        self._aU = np.concatenate([p[2] for p in parts]).astype(np.float64)
        self._AU = np.concatenate([p[3] for p in parts]) if parts else np.zeros((0, n), bool)
        f = np.zeros(n)
        C = np.zeros((n, n))
        for p in parts:
            f += p[4]
            C += p[5]
        self._f = f / self._sqrt_m
        self._C = C

    def _predictions(self):
        return self._f

    def _counts(self):
        return self._C

    def _fired_sizes(self):
        return np.diagonal(self._C)  # formed by every pass anyway

    def _update(self, g):
        dt = self._WU.dtype
        GX = (np.asarray(g)[:, None] * self._X64).astype(dt)
        scale = ((-self.step_size / self._sqrt_m) * self._aU).astype(dt)
        WU = self._WU + (self._AU * scale[:, None]).astype(dt) @ GX
        # the moved store: previous entries, with the rows of U replaced by their new values
        keep = ~np.isin(self._moved_idx, self._U, assume_unique=True)
        idx = np.concatenate([self._moved_idx[keep], self._U])
        W = np.concatenate([self._moved_W[keep], WU])
        order = np.argsort(idx, kind="stable")
        self._moved_idx, self._moved_W = idx[order], W[order]
        old = self.active_sets()
        moved = int(self._U.size)
        self._pass()
        new = self.active_sets()
        flips = int(_symdiff_total(old[0], old[1], new[0], new[1]))
        m, n = self.problem.m, self.problem.n
        return UpdateResult(flips=flips, moved=moved, work={"neurons_regenerated": m, "work": m * n})

    def active_sets(self):
        i, pos = np.nonzero(self._AU.T)  # by input, then ascending neuron
        return indptr_from_counts(np.bincount(i, minlength=self.problem.n)), self._U[pos].astype(np.int64)

    def weights(self):
        return self.problem.w0_with(self._moved_idx, self._moved_W)

    def weights_at(self, idx) -> np.ndarray:
        """Rows ``idx`` of ``W_t``, regenerating only the blocks they lie in."""
        return self.problem.w0_at_with(idx, self._moved_idx, self._moved_W)
