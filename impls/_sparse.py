"""What the sublinear implementations share: the step restricted to fired neurons.

An implementation that knows the fired sets ``S_i`` (as CSR, with the pre-activations
``z_ri`` of the fired pairs) can do a whole Gauss-Newton step touching only the union
``U = ∪_i S_i``:

* predictions ``f_i = sum_{r in S_i} a_r (z_ri - b) / sqrt m`` from the fired values;
* the compact activation matrix ``A_U`` (|U|, n), so the counts are ``A_U^T A_U`` and the
  update is ``ΔW_U = -(eta / sqrt m) diag(a_U) A_U (diag(g) X)``;
* flips as the symmetric differences of old and new sorted sets.

None of this allocates or scans anything of size m. Subclasses supply the index: how to
build it, and how to refresh it after the rows ``U`` of ``W`` moved (:meth:`_refresh`),
returning the new fired sets.
"""

from __future__ import annotations

import math
import time

import numba
import numpy as np

from sublin_bench.interface import Trainer, UpdateResult

F32_INF = np.float32(np.inf)


@numba.njit(cache=True)
def _symdiff_total(p0, i0, p1, i1):
    """``sum_i |S_i Δ S'_i|`` for two CSR structures with sorted rows."""
    total = 0
    for i in range(p0.shape[0] - 1):
        a, ae = p0[i], p0[i + 1]
        b, be = p1[i], p1[i + 1]
        while a < ae and b < be:
            if i0[a] == i1[b]:
                a += 1
                b += 1
            elif i0[a] < i1[b]:
                total += 1
                a += 1
            else:
                total += 1
                b += 1
        total += (ae - a) + (be - b)
    return total


def round_up_f32(values: np.ndarray) -> np.ndarray:
    """float32 numbers ``>= values`` (float64), each the nearest such float32."""
    k = values.astype(np.float32)
    low = k.astype(np.float64) < values
    if low.any():
        k[low] = np.nextafter(k[low], F32_INF)
    return k


def dot_slack(rownorm: np.ndarray, d: int, dtype) -> np.ndarray:
    """A bound on ``|z_a - z_b|`` for two floating-point evaluations of ``<w_r, x>`` with
    ``||x|| = 1`` in any summation order: ``2 (d + 2) u ||w_r||`` (Cauchy-Schwarz on the
    standard ``d u sum |w_k x_k|`` bound)."""
    u = np.finfo(dtype).eps / 2
    return 2.0 * (d + 2) * u * rownorm


class SparseTrainer(Trainer):
    """Base of the index-based trainers: the step on the fired neurons only.

    State kept between steps (all of size ``O(sum_i |S_i|)`` except ``W``):
    ``_ptr, _idx`` the CSR fired sets, ``_z`` their pre-activations (float64).
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

    def __init__(self, problem, *, step_size=1.0, **_):
        super().__init__(problem, step_size=step_size)
        self.warm_up(problem.spec.dtype)
        spec = problem.spec
        self._W = np.array(problem.W0, dtype=spec.dtype, copy=True)
        self._X = problem.X
        self._X64 = problem.X.astype(np.float64)
        self._XT = np.ascontiguousarray(problem.X.T)
        self._a64 = problem.a.astype(np.float64)
        self._sqrt_m = math.sqrt(spec.m)
        t0 = time.perf_counter()
        self._ptr, self._idx, self._z, build_work = self._build()
        self.build_seconds = time.perf_counter() - t0
        self.build_work = build_work
        self._set_derived()

    # -- subclass hooks ---------------------------------------------------------------

    def _build(self):
        """Build the index from ``self._W``; return ``(indptr, indices, z, work)``."""
        raise NotImplementedError

    def _refresh(self, U: np.ndarray, Z_U: np.ndarray):
        """Rows ``U`` (sorted) of ``self._W`` moved; their new pre-activations are ``Z_U``
        (|U|, n). Bring the index up to date and return ``(indptr, indices, z, work)``."""
        raise NotImplementedError

    # -- the shared sparse step ---------------------------------------------------------

    def _set_derived(self):
        n = self.problem.n
        k = np.diff(self._ptr)
        rows = np.repeat(np.arange(n), k)
        a = self._a64[self._idx]
        contrib = a * (self._z - self.problem.b)
        self._f = np.bincount(rows, weights=contrib, minlength=n) / self._sqrt_m
        # U: the union of the fired sets; A_U its compact activation matrix.
        U, inv = np.unique(self._idx, return_inverse=True)
        A_U = np.zeros((U.size, n), dtype=np.float32 if self.problem.m <= (1 << 24) else np.float64)
        A_U[inv, rows] = 1
        self._U, self._A_U = U, A_U
        self._C = A_U.T.astype(np.float64) @ A_U.astype(np.float64)

    def _predictions(self):
        return self._f

    def _counts(self):
        return self._C

    def _update(self, g):
        U, A_U = self._U, self._A_U
        dt = self._W.dtype
        GX = (g[:, None] * self._X64).astype(dt)
        scale = ((-self.step_size / self._sqrt_m) * self._a64[U]).astype(dt)
        delta = A_U.astype(dt, copy=False) @ GX
        delta *= scale[:, None]
        self._W[U] += delta
        Z_U = self._W[U] @ self._XT
        old = (self._ptr, self._idx)
        self._ptr, self._idx, self._z, work = self._refresh(U, Z_U)
        flips = int(_symdiff_total(old[0], old[1], self._ptr, self._idx))
        self._set_derived()
        work = dict(work)
        work["neurons_moved"] = int(U.size)
        return UpdateResult(flips=flips, moved=int(U.size), work=work)

    def active_sets(self):
        return self._ptr.copy(), self._idx.copy()

    def weights(self):
        return self._W.copy()
