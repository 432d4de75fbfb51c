"""Scaling sweeps: per-iteration time over a geometric grid of widths, resumable.

Each *point* is one (implementation, alpha, m, repeat): a freshly built trainer (build
time recorded separately), then ``T`` consecutive steps timed together (README.md,
"What the main job prints"). Points are appended to ``results.jsonl`` as they finish, one JSON object a
line; a re-run with the same directory skips every point already there, so an
interrupted sweep resumes without losing or repeating anything.

Measuring order: the whole grid once per repeat (repeat 0 of every point, then repeat 1,
...), the (alpha, m) cells of a repeat in a seeded random order, and at every cell the
implementations side by side, in an order rotated from repeat to repeat. A spell of noise
on a shared machine then falls on one repeat of a few points picked at random, which the
median over repeats discards, instead of on every repeat of one point or on a run of
neighbouring widths; and no implementation always follows the same neighbour.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import __version__, registry
from .errors import ConfigError, SublinError
from .problem import ProblemSpec, make_problem
from .runner import check_memory, time_steps

RESULTS = "results.jsonl"
CONFIG = "config.json"


@dataclass
class SweepConfig:
    """What a sweep measures. The defaults are the README's main job."""

    impls: list = field(default_factory=lambda: ["dense", "tree", "band"])
    alphas: list = field(default_factory=lambda: [0.24, 0.5])
    m_min: int = 2**12
    m_max: int = 2**20
    m_factor: float = 2**0.5  # two widths per doubling: nine points in the fitted upper half
    n: int = 32
    d: int = 32
    steps: int = 3
    repeats: int = 8  # with the widths' random order, what keeps dense's slope interval narrow
    seed: int = 0
    dtype: str = "float64"

    def __post_init__(self):
        if not self.impls:
            raise ConfigError("choose at least one implementation (--impl).")
        if not self.alphas:
            raise ConfigError("choose at least one alpha (--alpha).")
        for a in self.alphas:
            ProblemSpec(m=2, n=1, d=1, alpha=a)  # validates alpha
        if not (float(self.m_factor) >= 1.1):
            raise ConfigError(f"the grid factor must be a number >= 1.1, got {self.m_factor}.")
        if not (1 <= self.m_min <= self.m_max):
            raise ConfigError(f"need 1 <= m_min <= m_max, got m_min={self.m_min}, m_max={self.m_max}.")
        if self.steps < 1 or self.repeats < 1:
            raise ConfigError(f"steps and repeats must be >= 1, got {self.steps} and {self.repeats}.")
        ProblemSpec(m=self.m_min, n=self.n, d=self.d, alpha=self.alphas[0], seed=self.seed, dtype=self.dtype)

    @property
    def ms(self) -> list[int]:
        """``m_min * factor^k`` rounded to integers, up to ``m_max``."""
        out, k = [], 0
        while True:
            m = int(round(self.m_min * float(self.m_factor) ** k))
            if m > self.m_max * (1 + 1e-9):
                return out
            if not out or m > out[-1]:
                out.append(m)
            k += 1

    def spec(self, m: int, alpha: float) -> ProblemSpec:
        return ProblemSpec(m=m, n=self.n, d=self.d, alpha=alpha, seed=self.seed, dtype=self.dtype)

    def key(self, impl: str, alpha: float, m: int, repeat: int) -> tuple:
        return (impl, float(alpha), int(m), self.n, self.d, self.dtype, self.steps, self.seed, int(repeat))

    def as_dict(self) -> dict:
        return asdict(self)


def point_key(rec: dict) -> tuple:
    return (
        rec["impl"], float(rec["alpha"]), int(rec["m"]), rec["n"], rec["d"], rec["dtype"],
        rec["steps"], rec["seed"], int(rec["repeat"]),
    )


def load_results(directory: Path) -> list[dict]:
    """Every record of ``results.jsonl`` (a torn last line from an interruption is
    ignored, since it is rewritten when the point is measured again)."""
    path = Path(directory) / RESULTS
    out = []
    if path.exists():
        with path.open() as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return out


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that an interruption left without its newline, so the next
    record starts on a line of its own (the torn point is measured again)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        data = path.read_bytes()
        fh.truncate(data.rfind(b"\n") + 1)


def machine_info() -> dict:
    """What the numbers were measured on."""
    import numba
    import psutil
    import scipy
    from threadpoolctl import threadpool_info

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)" for i in threadpool_info()]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
        "blas": "; ".join(blas),
        "sublin_bench": __version__,
        "platform": platform.platform(),
    }


def planned_points(cfg: SweepConfig) -> list[tuple[str, float, int, int]]:
    """(impl, alpha, m, repeat) in measuring order.

    Repeat by repeat over the whole grid, so that the repeats of one point are spread
    over the run (a burst of load from a neighbour on a shared machine then spoils one
    repeat of a point, not all of them). Within a repeat the (alpha, m) cells come in a
    random order, drawn afresh for every repeat from ``(seed, repeat)`` (the same plan
    on every run, so a resumed sweep measures what the first one would have): a slow
    spell of the machine then lands on widths picked at random instead of on a run of
    neighbouring widths, where it would tilt the fitted slope. At every cell the
    implementations side by side, their order rotated from one repeat to the next:
    whatever runs right before a point (a dense pass that evicts the caches, say) then
    falls on every implementation alike instead of always on the same one.
    """
    k = len(cfg.impls)
    cells = [(alpha, m) for alpha in cfg.alphas for m in cfg.ms]
    plan = []
    for rep in range(cfg.repeats):
        order = np.random.default_rng([cfg.seed, rep]).permutation(len(cells))
        for c in order:
            alpha, m = cells[c]
            plan.extend((cfg.impls[(j + rep) % k], alpha, m, rep) for j in range(k))
    return plan


def m_label(m: int) -> str:
    """``2^k`` for powers of two, the number otherwise."""
    return f"2^{m.bit_length() - 1}" if m & (m - 1) == 0 else str(m)


def _cost_weight(m: int) -> float:
    # progress weights: cost grows roughly with m for the build and for dense steps
    return float(m) + 2.0**14


def run_sweep(cfg: SweepConfig, directory, *, progress=True, console=None) -> list[dict]:
    """Measure every point of ``cfg`` not yet in ``directory/results.jsonl``.

    Returns all records of the directory that belong to ``cfg``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in cfg.impls:
        registry.get(name)  # unknown names fail before anything runs
    (directory / CONFIG).write_text(json.dumps({"config": cfg.as_dict(), "machine": machine_info()}, indent=2))
    _drop_torn_tail(directory / RESULTS)
    done = {point_key(r) for r in load_results(directory)}
    todo = [p for p in planned_points(cfg) if cfg.key(*p) not in done]
    if todo:
        warm_up(cfg)

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[points]}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    ]
    total = sum(_cost_weight(p[2]) for p in todo)
    with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
        task = bar.add_task("sweep", total=max(total, 1.0), points=f"0/{len(todo)} points")
        problem_cache: dict = {"base": None}
        with (directory / RESULTS).open("a") as out:
            for count, (impl, alpha, m, rep) in enumerate(todo, 1):
                bar.update(task, description=f"{impl} alpha={alpha:g} m={m_label(m)}")
                rec = measure_point(cfg, impl, alpha, m, rep, problem_cache)
                out.write(json.dumps(rec) + "\n")
                out.flush()
                bar.update(task, advance=_cost_weight(m), points=f"{count}/{len(todo)} points")
    keys = {cfg.key(*p) for p in planned_points(cfg)}
    return [r for r in load_results(directory) if point_key(r) in keys]


def warm_up(cfg: SweepConfig) -> None:
    """One untimed small run of every implementation, so that first-use costs (JIT cache
    loading, BLAS thread start-up, imports) land in no measured point."""
    spec = cfg.spec(min(cfg.m_min, 2**10), cfg.alphas[0])
    problem = make_problem(spec)
    for impl in cfg.impls:
        if registry.available(impl)[0]:
            registry.create(impl, problem).run(min(cfg.steps, 2))


def _problem(spec: ProblemSpec, cache: dict):
    """The problem of ``spec``, cut from the widest one generated so far (a view: the
    neurons of a narrower problem are a prefix of a wider one's, see
    :meth:`Problem.narrowed`), so a sweep that visits the grid once per repeat draws each
    width's weights once, not once per repeat. One base problem is kept at a time."""
    base = cache.get("base")
    if base is None or base.m < spec.m:
        cache["base"] = None
        gc.collect()
        cache["base"] = base = make_problem(spec)
    return base.narrowed(spec)


def measure_point(cfg: SweepConfig, impl: str, alpha: float, m: int, rep: int, problem_cache: dict) -> dict:
    """Build a fresh trainer and time ``cfg.steps`` steps; never raises for a point that
    cannot run (unavailable, too large): the record says why it was skipped."""
    spec = cfg.spec(m, alpha)
    rec = {
        "impl": impl, "alpha": float(alpha), "m": int(m), "n": cfg.n, "d": cfg.d, "dtype": cfg.dtype,
        "steps": cfg.steps, "seed": cfg.seed, "repeat": int(rep), "b": spec.threshold,
    }
    ok, reason = registry.available(impl)
    if not ok:
        return rec | {"status": "skipped", "reason": reason}
    try:
        rec["memory_estimate"] = check_memory(impl, spec)
        trainer = registry.create(impl, _problem(spec, problem_cache))
        per_iter, infos = time_steps(trainer, cfg.steps)
    except SublinError as exc:  # too large for memory (MemoryBudgetError), bad size, ...
        return rec | {"status": "skipped", "reason": str(exc)}
    rec |= {
        "status": "ok",
        "build_seconds": trainer.build_seconds,
        "per_iter_seconds": per_iter,
        "step_seconds": [i.seconds for i in infos],
        "fired_mean": float(np.mean([i.fired_mean for i in infos])),
        "flips": [i.flips for i in infos],
        "moved": [i.moved for i in infos],
        "work": [int(i.work.get("work", 0)) for i in infos],
        "residual_norm": [i.residual_norm for i in infos],
        "finished_at": time.time(),
    }
    del trainer
    return rec
