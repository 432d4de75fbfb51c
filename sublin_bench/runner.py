"""Building trainers safely and timing them, as every front end (CLI, scale sweeps, asv)
does it."""

from __future__ import annotations

import time

from . import registry
from .interface import StepInfo, Trainer
from .memory import check_fits
from .problem import ProblemSpec, make_problem

__all__ = ["build_trainer", "time_steps", "check_memory"]


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
