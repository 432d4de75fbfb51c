"""The asv suite: implementation x width m x alpha, n = d = 32.

The implementation parameter lists every implementation this environment has registered
(built-ins and plug-ins, through ``registry.names()``), so a plug-in is timed by the same
suite; SUBLIN_BENCH_ASV_IMPLS (comma-separated) narrows it, e.g. to the headline
``dense,tree,band`` of the regression gate. SUBLIN_BENCH_ASV_PROFILE picks the
fast/default/large grid of widths. Within one environment the lists are static; an
implementation that cannot run here raises NotImplementedError in setup, so asv marks it
skipped rather than the list changing with the machine. Data creation happens in
setup, never in the timed call. GPU trainers synchronise their stream inside step(), so
the timed call includes the device work.
"""

import time
from functools import lru_cache

import os

from sublin_bench import ProblemSpec, UnknownImplementationError, make_problem, registry
from sublin_bench.asv_import import ASV_D, ASV_N, ASV_STEPS, asv_profile


def _impls():
    # every registered name, in registry order (a commit before a name existed lists fewer)
    names = list(registry.names())
    wanted = [w.strip() for w in os.environ.get("SUBLIN_BENCH_ASV_IMPLS", "").split(",") if w.strip()]
    return [w for w in wanted] if wanted else names


_PROFILE = asv_profile()
_PARAMS = (_impls(), _PROFILE["ms"], _PROFILE["alphas"])
_NAMES = ["impl", "m", "alpha"]


@lru_cache(maxsize=2)
def _problem(m, alpha):
    return make_problem(ProblemSpec(m=m, n=ASV_N, d=ASV_D, alpha=alpha, seed=0))


def _require(impl):
    try:
        ok, reason = registry.available(impl)
    except UnknownImplementationError as exc:  # e.g. a GPU plugin not installed
        ok, reason = False, str(exc)
    if not ok:
        raise NotImplementedError(reason)
    cls = registry.get(impl)
    if hasattr(cls, "warm_up"):
        cls.warm_up("float64")  # JIT outside every timed region


def _per_step_timer():
    # asv subtracts two readings: dividing each by T makes the recorded value the time
    # per step of T consecutive steps from a fresh build (README.md, "What the main job prints")
    return time.perf_counter() / ASV_STEPS


class _OnProblem:
    """Shared setup: the problem only (a timed call that builds the trainer uses this)."""

    params = _PARAMS
    param_names = _NAMES
    timeout = 900

    def setup(self, impl, m, alpha):
        _require(impl)
        self.problem = _problem(m, alpha)


class _Trained(_OnProblem):
    """Shared setup: a freshly built trainer for every sample."""

    def setup(self, impl, m, alpha):
        super().setup(impl, m, alpha)
        self.trainer = registry.create(impl, self.problem)


class Step(_Trained):
    """Per-iteration time: T = 3 consecutive steps from a fresh build, per step."""

    number = 1
    repeat = (3, 7, 60.0)
    warmup_time = 0.0
    timer = staticmethod(_per_step_timer)

    def time_step(self, impl, m, alpha):
        for _ in range(ASV_STEPS):
            self.trainer.step()


class Build(_OnProblem):
    """Index build time (reported separately from the iterations)."""

    number = 1
    repeat = (3, 5, 60.0)
    warmup_time = 0.0

    def time_build(self, impl, m, alpha):
        registry.create(impl, self.problem)


class Memory(_OnProblem):
    """Peak memory of building and training T steps."""

    def peakmem_build_and_step(self, impl, m, alpha):
        registry.create(impl, self.problem).run(ASV_STEPS)


class Work(_Trained):
    """Counted work of T steps from a fresh build (machine independent)."""

    def _run(self):
        return self.trainer.run(ASV_STEPS)

    def track_fired_per_input(self, impl, m, alpha):
        return sum(i.fired_mean for i in self._run()) / ASV_STEPS

    track_fired_per_input.unit = "neurons"

    def track_flips_per_step(self, impl, m, alpha):
        return sum(i.flips for i in self._run()) / ASV_STEPS

    track_flips_per_step.unit = "activations"

    def track_work_per_step(self, impl, m, alpha):
        return sum(i.work["work"] for i in self._run()) / ASV_STEPS

    track_work_per_step.unit = "pair evaluations + node visits"
