"""Building trainers safely and timing them, as every front end (CLI, scale sweeps, asv)
does it."""

from __future__ import annotations

import time

from . import registry
from .interface import StepInfo, Trainer
from .memory import check_fits
from .problem import ProblemSpec, make_problem

__all__ = ["build_trainer", "time_steps", "check_memory", "warm_up"]


def warm_up(impls, spec: ProblemSpec, solvers=("exact",)) -> None:
    """Pay every first-use cost before anything is timed: the generator's thread pool and
    threadpoolctl's scan of the loaded libraries (about 1.5 s here, on the first
    multi-block ``W0``), numba's cache loads and BLAS start-up, by generating a two-block
    ``W0`` and training every implementation with every solver (``solvers``: names or
    ``name:options``) for two steps on a small problem like ``spec``. Problems too small
    or unavailable implementations are passed over."""
    from .errors import SublinError
    from .generator import W_BLOCK
    from .solvers import parse_solver

    try:
        make_problem(spec.replace(m=2 * W_BLOCK, n=min(spec.n, 8), init="plain")).W0
    except SublinError:
        pass
    try:
        problem = make_problem(spec.replace(m=min(spec.m, 2**10), n=min(spec.n, 64)))
    except SublinError:
        return
    for impl in impls:
        if not registry.available(impl)[0]:
            continue
        for solver in solvers:
            name, options = parse_solver(solver)
            try:
                trainer = registry.create(impl, problem)
                trainer.set_solver(name, **options)
                trainer.run(2)
            except SublinError:
                pass


def check_memory(name: str, spec: ProblemSpec, available: int | None = None) -> int:
    """Refuse (``MemoryBudgetError``) before allocating if problem plus trainer would not
    fit; return the estimate in bytes otherwise."""
    est = registry.memory_estimate(name, spec)
    check_fits(est, f"{name!r} on {spec.describe()} (problem and trainer)", available)
    return est


def build_trainer(name: str, spec: ProblemSpec, *, step_size: float = 1.0, **options) -> Trainer:
    """Check availability and memory, generate the problem, build the trainer.

    The trainer's ``build_seconds`` holds the index build time (excluded from steps).
    """
    ok, reason = registry.available(name)
    if not ok:
        from .errors import UnavailableError

        raise UnavailableError(f"implementation {name!r} is not available here: {reason}")
    check_memory(name, spec)
    return registry.create(name, make_problem(spec), step_size=step_size, **options)


def time_steps(trainer: Trainer, steps: int = 3, between=None) -> tuple[float, list[StepInfo]]:
    """Wall time of ``steps`` consecutive steps divided by ``steps`` (README.md, "What the main job prints"),
    and their StepInfos. ``between(trainer)``, if given, is called before every step and
    after the last, outside the timing (a measurement of the state, e.g. an approximate
    implementation's recall)."""
    if between is None:
        t0 = time.perf_counter()
        infos = [trainer.step() for _ in range(steps)]
        return (time.perf_counter() - t0) / steps, infos
    total = 0.0
    infos = []
    for _ in range(steps):
        between(trainer)
        t0 = time.perf_counter()
        infos.append(trainer.step())
        total += time.perf_counter() - t0
    between(trainer)
    return total / steps, infos
