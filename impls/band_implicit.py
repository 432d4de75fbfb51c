"""``band-implicit``: the band index over the candidate neurons only, with no array of m
numbers anywhere.

A neuron whose pre-activations all stay at or below ``b - D`` (``D`` the band margin) is
in no candidate list; it never fires, so it never moves, and its row is never read again
after the build. ``band`` still stores it (``W`` and its anchor, ``m d`` numbers each, and
an m-byte flag array); ``band-implicit`` stores only the candidates' rows, packed
contiguously and firing-first, and otherwise runs ``band``'s code unchanged (the stored
rows are indexed ``0 .. K-1``, mapped to neuron indices only at the interface).

Build
-----
* From a *sampled* problem (``ProblemSpec(init="sampled")``) the build is the sampling
  itself: the problem already holds exactly the candidates at ``t0 = b - D0``
  (:mod:`sublin_bench.generator`), so the build costs ``O(m n Q(t0) n d)``, sublinear in m.
  A margin above the default ``D0`` would need neurons the sample did not draw, and is
  refused.
* From a *plain* problem it streams over the generator's blocks of ``W0`` (regenerated
  from the seed, or cut from ``problem.W0`` where that is already in memory), one BLAS
  product per block on every core, keeping the rows with ``max_i <w_r, x_i> > b - D``:
  ``O(m n d)`` time once, memory ``O(K d)`` plus one block per thread.

Exactness is ``band``'s: the candidates dropped here are the neurons whose every
pre-activation is at most ``b - D``, which ``band`` keeps but never reads again.

``weights()`` regenerates ``W0`` where it fits in memory and overwrites the stored rows;
:meth:`BandImplicitTrainer.weights_at` gives any subset of rows without that.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from sublin_bench.errors import ConfigError
from sublin_bench.generator import blocks_in_flight_bytes, default_margin, expected_candidates
from sublin_bench.impls.band import BandTrainer, resolve_margin


class BandImplicitTrainer(BandTrainer):
    """``band`` over the candidate neurons only (see the module docstring).

    Parameters
    ----------
    margin : float, optional
        The margin ``D > 0``; defaults to ``band``'s. With a sampled problem, at most the
        default (the sample holds the candidates of the default margin).
    neuron_order : {"firing", "given"}
        As for ``band``; "given" keeps the candidates in increasing neuron order.
    """

    name = "band-implicit"
    holds_problem_weights = False

    def _initial_rows(self):
        problem = self.problem
        b, D = problem.b, self.margin
        sample = problem.sample
        if sample is not None:
            if D > default_margin(b) * (1 + 1e-12):
                raise ConfigError(
                    f"margin {D:g} is wider than the default {default_margin(b):g} that the sampled problem's "
                    "candidates were drawn for; use margin <= the default, or a plain problem."
                )
            return sample.W, sample.idx, sample.a, None
        t = np.asarray(b - D, dtype=problem.dtype)
        bt = np.asarray(b, dtype=problem.dtype)
        XT = self._XT

        def keep(start, Wb, ab):
            Z = Wb @ XT
            sel = np.flatnonzero(Z.max(axis=1) > t)
            return sel + start, Wb[sel], ab[sel], np.count_nonzero(Z[sel] > bt, axis=1)

        parts = problem.map_blocks(keep, copy=False)
        idx = np.concatenate([p[0] for p in parts]).astype(np.int64)
        W = np.concatenate([p[1] for p in parts]) if parts else np.empty((0, problem.d), problem.dtype)
        a = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, np.int8)
        counts = np.concatenate([p[3] for p in parts]) if parts else np.empty(0, np.int64)
        return W, idx, a, counts

    @property
    def stored(self) -> int:
        """How many neurons are stored (the candidates at build time)."""
        return int(self._W.shape[0])

    @classmethod
    def memory_estimate(cls, spec, margin=None) -> int:
        b = spec.threshold
        D = resolve_margin(margin, b)
        K = expected_candidates(spec.m, spec.n, b - D)  # P(a neuron is stored) <= n Q(b - D)
        cand = spec.m * spec.n * float(ndtr(D - b))  # expected sum_i |C_i|
        per_row = 2 * spec.d * spec.itemsize + 8 + 8 + 1 + 10 + spec.d * 8  # W, anchor, perm, a, flag, keys, gather
        return int(K * per_row + 4 * 16 * cand + blocks_in_flight_bytes(spec.m, (spec.d + spec.n) * 8))

    def weights(self) -> np.ndarray:
        return self.problem.w0_with(self._perm, self._W)

    def weights_at(self, idx) -> np.ndarray:
        """Rows ``idx`` of ``W_t`` (any neuron indices), regenerating only the blocks they
        lie in."""
        return self.problem.w0_at_with(idx, self._perm, self._W)
