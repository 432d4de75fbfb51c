"""Scaling sweeps: per-iteration time over a geometric grid of widths, resumable.

Each *point* is one (implementation, alpha, m, repeat): a freshly built trainer (build
time recorded separately), then ``T`` consecutive steps, each timed (README.md, "What the
main job prints"). Points are appended to ``results.jsonl`` as they finish, one JSON
object a line; a re-run with the same directory skips every point already measured, so an
interrupted sweep resumes without losing or repeating anything.

What resume trusts
------------------
* Every record carries its provenance (:mod:`sublin_bench.provenance`: commit, dirty
  state, versions, threads, host). A directory whose measured points have another
  provenance than the current process is refused, with the differences named: results of
  two states of the code or two machines are never pooled into one fit.
* One run at a time per directory: a lock file (``.lock``, via filelock) is held for the
  whole sweep; a second run on the same directory is refused at once.
* A point recorded as skipped (implementation unavailable, memory short) is measured again
  on the next run; only measured points count as done.
* A line of ``results.jsonl`` that is not a point record (a torn write, ``{}``, ``null``,
  a list, a field of the wrong type) is reported with its line number and ignored.

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
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import registry
from .errors import ConfigError, SublinError
from .memory import format_bytes
from .problem import ProblemSpec, make_problem
from .provenance import describe, provenance, provenance_differences
from .conformance import measure_recall
from .runner import check_memory, time_steps
from .solvers import make_solver, view_counts

RESULTS = "results.jsonl"
CONFIG = "config.json"
LOCK = ".lock"

#: The largest size any option takes: indices are int64, and numbers beyond this are
#: typing mistakes, not widths.
MAX_SIZE = 2**62


def _unique(values, cast):
    out = []
    for v in values:
        v = cast(v)
        if v not in out:
            out.append(v)
    return out


@dataclass
class SweepConfig:
    """What a sweep measures. The defaults are the README's main job.

    Repeated implementations or alphas are merged (first occurrence kept).
    """

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
    init: str = "plain"  # ProblemSpec.init: "sampled" draws only the candidates (implicit implementations)
    data: str = "sphere"  # ProblemSpec.data: the sphere, a bundled data set or a file
    #: The axis the grid runs over: "m" (the widths m_min..m_max at this n and d), "n"
    #: (n_min..n_max at width ``m`` and this d) or "d" (d_min..d_max at width ``m`` and this n).
    #: ``m_factor`` is the grid's ratio on whichever axis varies.
    vary: str = "m"
    m: int = 2**18  # the width when n or d varies
    n_min: int | None = None
    n_max: int | None = None
    d_min: int | None = None
    d_max: int | None = None
    #: How each step's Gauss-Newton system is solved (sublin_bench.solvers.SOLVERS): every
    #: implementation is measured with every solver.
    solvers: list = field(default_factory=lambda: ["exact"])
    #: Dask workers the trainers are sharded over (0: one process; sublin_bench.sharding).
    workers: int = 0

    def __post_init__(self):
        if not self.impls:
            raise ConfigError("choose at least one implementation (--impl).")
        if not self.alphas:
            raise ConfigError("choose at least one alpha (--alpha).")
        self.impls = _unique(self.impls, str)
        if not self.solvers:
            raise ConfigError("choose at least one solver (--solver).")
        self.solvers = _unique(self.solvers, str)
        for sv in self.solvers:
            make_solver(sv)  # an unknown name is refused, with the known ones listed
        if self.vary not in AXES:
            raise ConfigError(f"--vary must be one of {', '.join(AXES)}, got {self.vary!r}.")
        if self.vary != "m":
            lo, hi = getattr(self, f"{self.vary}_min"), getattr(self, f"{self.vary}_max")
            if lo is None or hi is None:
                raise ConfigError(f"--vary {self.vary} needs the grid's ends: --{self.vary}-min and --{self.vary}-max.")
            if not (1 <= lo <= hi):
                raise ConfigError(f"need 1 <= {self.vary}_min <= {self.vary}_max, got {lo} and {hi}.")
            if not 1 <= self.m <= MAX_SIZE:
                raise ConfigError(f"the width m must be in 1 .. 2**62, got {self.m}.")
        for ax in AXES:
            if ax != self.vary and ax != "m" and (getattr(self, f"{ax}_min") is not None
                                                  or getattr(self, f"{ax}_max") is not None):
                raise ConfigError(f"--{ax}-min/--{ax}-max go with --vary {ax} (this sweep varies {self.vary}).")
        for a in self.alphas:
            ProblemSpec(m=2, n=1, d=1, alpha=a)  # validates alpha
        self.alphas = _unique(self.alphas, float)
        try:
            factor = float(self.m_factor)
        except (TypeError, ValueError):
            factor = float("nan")
        if not (math.isfinite(factor) and factor >= 1.1):
            raise ConfigError(f"the grid factor must be a finite number >= 1.1, got {self.m_factor}.")
        if self.vary == "m" and not (1 <= self.m_min <= self.m_max):
            raise ConfigError(f"need 1 <= m_min <= m_max, got m_min={self.m_min}, m_max={self.m_max}.")
        if self.vary == "m" and self.m_max > MAX_SIZE:
            raise ConfigError(f"m_max={self.m_max} is beyond any machine (at most 2**62); choose a smaller --m-max.")
        if self.steps < 1 or self.repeats < 1:
            raise ConfigError(f"steps and repeats must be >= 1, got {self.steps} and {self.repeats}.")
        self.spec(self.grid[0], self.alphas[0])  # validates the sizes, dtype, init and data

    @property
    def grid(self) -> list[int]:
        """The values of the varied axis: ``lo * factor^k`` rounded to integers, up to ``hi``."""
        lo, hi = getattr(self, f"{self.vary}_min"), getattr(self, f"{self.vary}_max")
        out, k = [], 0
        while True:
            x = int(round(lo * float(self.m_factor) ** k))
            if x > hi * (1 + 1e-9):
                return out
            if not out or x > out[-1]:
                out.append(x)
            k += 1

    @property
    def ms(self) -> list[int]:
        """The widths of the sweep (the grid when m varies, else the one width ``m``)."""
        return self.grid if self.vary == "m" else [int(self.m)]

    def sizes(self, x: int) -> dict:
        """``{"m", "n", "d"}`` of the grid point ``x`` of the varied axis."""
        out = {"m": int(self.m), "n": int(self.n), "d": int(self.d)}
        out[self.vary] = int(x)
        return out

    def spec(self, x: int, alpha: float) -> ProblemSpec:
        """The problem at grid point ``x`` (a width when m varies, else n or d)."""
        return ProblemSpec(**self.sizes(x), alpha=alpha, seed=self.seed, dtype=self.dtype, init=self.init,
                           data=self.data)

    def key(self, impl: str, alpha: float, x: int, repeat: int, solver: str = "exact") -> tuple:
        z = self.sizes(x)
        return (impl, solver, float(alpha), z["m"], z["n"], z["d"], self.dtype, self.steps, self.seed, int(repeat))

    def as_dict(self) -> dict:
        return asdict(self)


#: Fields every point record has, with the types they must have.
_FIELDS = {
    "impl": str, "alpha": (int, float), "m": int, "n": int, "d": int, "dtype": str, "steps": int,
    "seed": int, "repeat": int, "status": str,
}
#: Further fields a measured ("ok") record must have.
_OK_FIELDS = {"per_iter_seconds": (int, float), "step_seconds": list}


#: The axes a sweep can vary.
AXES = ("m", "n", "d")


def point_key(rec: dict) -> tuple:
    return (
        rec["impl"], rec.get("solver", "exact"), float(rec["alpha"]), int(rec["m"]), rec["n"], rec["d"],
        rec["dtype"], rec["steps"], rec["seed"], int(rec["repeat"]),
    )


def record_problem(rec) -> str | None:
    """Why ``rec`` is not a usable point record, or None if it is."""
    if not isinstance(rec, dict):
        return f"not a JSON object but {type(rec).__name__} {json.dumps(rec)[:40]}"
    need = _FIELDS | (_OK_FIELDS if rec.get("status") == "ok" else {})
    missing = [k for k in need if k not in rec]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    for k, types in need.items():
        v = rec[k]
        if isinstance(v, bool) or not isinstance(v, types):
            return f"field {k!r} has the wrong type ({json.dumps(v)[:30]})"
    if rec["status"] not in ("ok", "skipped"):
        return f"status {rec['status']!r} is neither 'ok' nor 'skipped'"
    if rec["status"] == "ok":
        vals = [rec["per_iter_seconds"], *rec["step_seconds"]]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                   for v in vals) or not rec["step_seconds"]:
            return "timings are not finite non-negative numbers"
    return None


def read_results(directory: Path) -> tuple[list[dict], list[str]]:
    """The point records of ``results.jsonl`` and one warning per line that is not one
    (with its line number). A torn last line from an interruption is not warned about:
    it is cut before the next write (the point is measured again)."""
    path = Path(directory) / RESULTS
    out, warnings = [], []
    if not path.exists():
        return out, warnings
    with path.open() as fh:
        lines = fh.read().split("\n")
    torn_tail = lines[-1] != ""  # no newline after the last line: an interrupted write
    for no, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if not (torn_tail and no == len(lines)):
                warnings.append(f"{path}:{no}: not valid JSON; line ignored")
            continue
        why = record_problem(rec)
        if why:
            warnings.append(f"{path}:{no}: not a point record ({why}); line ignored")
            continue
        out.append(rec)
    return out, warnings


def load_results(directory: Path) -> list[dict]:
    """The usable records of ``results.jsonl`` (see :func:`read_results`)."""
    return read_results(directory)[0]


def latest_per_point(records: list[dict]) -> list[dict]:
    """One record per point: the first measured one if any, else the latest skip."""
    best: dict = {}
    for r in records:
        k = point_key(r)
        if k not in best or best[k]["status"] != "ok":
            best[k] = r
    return list(best.values())


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
    """What the numbers were measured on: :func:`~sublin_bench.provenance.provenance`
    plus the machine's memory and platform."""
    import platform

    import psutil

    return provenance() | {
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
    }


def prepare_out(directory) -> Path:
    """Create ``directory`` (with parents) and make sure it can be written, before
    anything is measured. Raises ConfigError naming the directory and the reason."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"cannot write to the output directory {str(directory)!r} ({exc.strerror or exc}); "
            "choose another with --out."
        ) from None
    return directory


def check_grid_fits(cfg: SweepConfig, total: int | None = None) -> None:
    """Refuse, before measuring, a grid whose widest points could never fit in this
    machine's memory (however much of it were free), naming the widest width that could.
    Points that fit the machine but not the memory free at the time are skipped and retried
    on the next run."""
    import psutil

    from .memory import MEMORY_FRACTION

    total = int(psutil.virtual_memory().total) if total is None else int(total)
    budget = int(total * MEMORY_FRACTION)
    v = cfg.vary
    for impl in cfg.impls:
        if not registry.available(impl)[0]:
            continue
        xs = cfg.grid
        est = {x: max(registry.memory_estimate(impl, cfg.spec(x, a)) for a in cfg.alphas) for x in xs}
        too_big = [x for x in xs if est[x] > budget]
        if too_big:
            fits = [x for x in xs if est[x] <= budget]
            what = "the widest grid width" if v == "m" else "the largest grid point"
            hint = f"{what} that fits is {v}={m_label(fits[-1])}: use --{v}-max {fits[-1]}" if fits \
                else f"no point of this grid fits: use a smaller --{v}-min" + ("/--n" if v == "m" else "/--m")
            z = cfg.sizes(too_big[0])
            raise ConfigError(
                f"{impl!r} at m={m_label(z['m'])}, n={z['n']}, d={z['d']} needs about "
                f"{format_bytes(est[too_big[0]])}, more than this machine's {format_bytes(total)} of memory "
                f"could give ({MEMORY_FRACTION:.0%}); {hint}."
            )


def _lock(directory: Path):
    from filelock import FileLock, Timeout

    lock = FileLock(str(directory / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise ConfigError(
            f"another sublin-bench run is writing to {str(directory)!r} (its lock {LOCK} is held); "
            "wait for it to finish, or measure into another --out."
        ) from None
    return lock


def planned_points(cfg: SweepConfig) -> list[tuple]:
    """(impl, alpha, x, repeat, solver) in measuring order (``x`` the value of the varied
    axis: the width m unless the sweep varies n or d).

    Repeat by repeat over the whole grid, so that the repeats of one point are spread
    over the run (a burst of load from a neighbour on a shared machine then spoils one
    repeat of a point, not all of them). Within a repeat the (alpha, m) cells come in a
    random order, drawn afresh for every repeat from ``(seed, repeat)`` (the same plan
    on every run, so a resumed sweep measures what the first one would have): a slow
    spell of the machine then lands on widths picked at random instead of on a run of
    neighbouring widths, where it would tilt the fitted slope. At every cell the
    implementations side by side, their order rotated from one repeat to the next:
    whatever runs right before a point (a dense pass that evicts the caches, say) then
    falls on every implementation alike instead of always on the same one. Solvers count
    as implementations here: every (implementation, solver) pair is one of the rotated.
    """
    variants = [(impl, sv) for impl in cfg.impls for sv in cfg.solvers]
    k = len(variants)
    cells = [(alpha, x) for alpha in cfg.alphas for x in cfg.grid]
    plan = []
    for rep in range(cfg.repeats):
        order = np.random.default_rng([cfg.seed, rep]).permutation(len(cells))
        for c in order:
            alpha, x = cells[c]
            for j in range(k):
                impl, solver = variants[(j + rep) % k]
                plan.append((impl, alpha, x, rep, solver))
    return plan


def m_label(m: int) -> str:
    """``2^k`` for powers of two, the number otherwise."""
    return f"2^{m.bit_length() - 1}" if m & (m - 1) == 0 else str(m)


def _cost_weight(cfg: SweepConfig, x: int) -> float:
    # progress weights: cost grows roughly with m n d for the build and for dense steps
    z = cfg.sizes(x)
    return float(z["m"]) * z["n"] * z["d"] + 2.0**24


_CONFIG_DEFAULTS = {"init": "plain", "data": "sphere", "vary": "m", "workers": 0}  # what records written before a field existed meant


def _config_fields(cfg: SweepConfig) -> tuple:
    """The fields of a point record that are the sweep's configuration (the rest are the
    grid): the axis varied, the two sizes held fixed, and the rest of the problem."""
    return ("vary", *(ax for ax in AXES if ax != cfg.vary), "dtype", "steps", "seed", "init", "data", "workers")


def _check_resumable(cfg: SweepConfig, records: list[dict], prov: dict, directory: Path) -> None:
    """Refuse a directory whose measured points have another provenance or configuration
    than this sweep (see the module docstring)."""
    ok = [r for r in records if r["status"] == "ok"]
    for r in ok:
        diff = provenance_differences(r.get("provenance"), prov)
        if diff:
            others = sum(provenance_differences(x.get("provenance"), prov) != [] for x in ok)
            raise ConfigError(
                f"{directory / RESULTS} holds {others} measured point(s) of another provenance "
                f"({'; '.join(diff)}); results of different provenance are never pooled: "
                "measure into another --out, or move that results.jsonl away."
            )
    fields = _config_fields(cfg)
    mine = {k: getattr(cfg, k) for k in fields}
    for r in ok:
        theirs = {k: r.get(k, _CONFIG_DEFAULTS.get(k)) for k in fields}
        if theirs != mine:
            diff = "; ".join(f"{k}: {theirs[k]} -> {mine[k]}" for k in fields if theirs[k] != mine[k])
            raise ConfigError(
                f"{directory / RESULTS} holds points of another configuration ({diff}); "
                "measure into another --out (only the grid: implementations, solvers, alphas, the varied "
                "axis's values and repeats, may be extended in place)."
            )


def run_sweep(cfg: SweepConfig, directory, *, progress=True, console=None, say=None) -> list[dict]:
    """Measure every point of ``cfg`` not yet measured in ``directory/results.jsonl``.

    Returns one record per planned point (the measured one, or the latest skip). ``say``
    (a callable taking one line) hears what resume found: points already done, lines
    ignored. Raises ConfigError when the directory cannot be written, is locked by another
    run, holds results of another provenance or configuration, or when no point of the
    sweep could be measured.
    """
    say = say or (lambda line: None)
    directory = prepare_out(directory)
    for name in cfg.impls:
        registry.get(name)  # unknown names fail before anything runs
    check_grid_fits(cfg)
    lock = _lock(directory)
    try:
        _drop_torn_tail(directory / RESULTS)
        records, warnings = read_results(directory)
        for w in warnings:
            say(w)
        prov = provenance()
        _check_resumable(cfg, records, prov, directory)
        (directory / CONFIG).write_text(
            json.dumps({"config": cfg.as_dict(), "machine": machine_info()}, indent=2)
        )
        plan = planned_points(cfg)
        done = {point_key(r) for r in records if r["status"] == "ok"}
        todo = [p for p in plan if cfg.key(*p) not in done]
        already = len(plan) - len(todo)
        if already:
            retried = len({point_key(r) for r in records if r["status"] != "ok"} - done
                          & {cfg.key(*p) for p in todo})
            say(f"resuming: {already} of {len(plan)} points already measured in {directory / RESULTS}"
                + (f"; {retried} skipped before are tried again" if retried else "")
                + f" ({describe(prov)})")
        if todo:
            warm_up(cfg)
            _measure(cfg, todo, directory, prov, progress, console)
    finally:
        lock.release()
    keys = {cfg.key(*p) for p in plan}
    mine = [r for r in latest_per_point(load_results(directory)) if point_key(r) in keys]
    if not any(r["status"] == "ok" for r in mine):
        reasons = sorted({r.get("reason", "?") for r in mine})
        raise ConfigError(
            f"no point of the sweep could be measured ({len(mine)} skipped): {reasons[0]}"
            + (f" (and {len(reasons) - 1} other reason(s), see {directory / RESULTS})" if len(reasons) > 1 else "")
        )
    return mine


def _measure(cfg, todo, directory, prov, progress, console):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[points]}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    ]
    total = sum(_cost_weight(cfg, p[2]) for p in todo)
    with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
        task = bar.add_task("sweep", total=max(total, 1.0), points=f"0/{len(todo)} points")
        problem_cache: dict = {"base": None}
        with (directory / RESULTS).open("a") as out:
            for count, (impl, alpha, x, rep, solver) in enumerate(todo, 1):
                label = impl if solver == "exact" else f"{impl} ({solver})"
                bar.update(task, description=f"{label} alpha={alpha:g} {cfg.vary}={m_label(x)}")
                rec = measure_point(cfg, impl, alpha, x, rep, problem_cache, solver=solver) | {"provenance": prov}
                out.write(json.dumps(rec) + "\n")
                out.flush()
                bar.update(task, advance=_cost_weight(cfg, x), points=f"{count}/{len(todo)} points")


def warm_up(cfg: SweepConfig) -> None:
    """One untimed small run of every implementation with every solver, so that first-use
    costs (JIT cache loading, BLAS and generator thread start-up, imports) land in no
    measured point (:func:`sublin_bench.runner.warm_up`)."""
    from .runner import warm_up as warm

    warm(cfg.impls, cfg.spec(cfg.grid[0], cfg.alphas[0]), cfg.solvers)


def _problem(spec: ProblemSpec, cache: dict, weights: bool):
    """The problem of ``spec`` and the seconds spent generating its ``W0`` whole (only when
    ``weights``: the implementation reads it; 0 if it was already there).

    Plain problems are cut from the widest one generated so far (a view: the neurons of a
    narrower problem are a prefix of a wider one's, see :meth:`Problem.narrowed`), so a
    sweep that visits the grid once per repeat draws each width's weights once, not once
    per repeat. One base problem is kept at a time. Sampled problems are drawn afresh
    (their candidates depend on m)."""
    t0 = time.perf_counter()
    if spec.init == "sampled":
        p = make_problem(spec)
        if weights:
            p.W0
        return p, (time.perf_counter() - t0 if weights else 0.0)
    base = cache.get("base")
    if base is None or base.m < spec.m or (base.n, base.d) != (spec.n, spec.d):
        cache["base"] = None
        gc.collect()
        cache["base"] = base = make_problem(spec)
    t0 = time.perf_counter()
    generated = weights and base._W0 is None
    if generated:
        base.W0
    return base.narrowed(spec), (time.perf_counter() - t0 if generated else 0.0)


def data_effects(problem, counts0, cache: dict | None = None) -> dict:
    """What the inputs do to the method, for the report: the mean overlap of the fired sets
    ``|S_i ∩ S_j|`` (i != j) at t = 0, measured and expected (``m P(z_i > b, z_j > b)``
    with the inputs' correlations), the same expectation for points on the sphere of the
    same n and d, the separation delta and the shifted NTK's least eigenvalue lambda.

    Everything but the measured overlap depends on the inputs and b only: with ``cache``
    (a sweep's problem cache) it is computed once per threshold, not once per point."""
    n, m, b = problem.n, problem.m, problem.b
    off = ~np.eye(n, dtype=bool)
    out = {"overlap_mean": float(counts0[off].mean()) if n > 1 else None}
    if n > 1024:  # O(n^2) Owen's T evaluations and an n x n eigendecomposition: skipped for large n
        return out
    cache = {} if cache is None else cache
    key = ("effects", problem.spec.replace(m=1, alpha=0.0, b=b, init="plain"))
    if key not in cache:
        from .data import separation
        from .proofs_check.ntk_eigen import both_exceed, shifted_ntk

        X = problem.X.astype(np.float64)
        sphere = make_problem(key[1].replace(data="sphere")).X.astype(np.float64)
        cache[key] = {
            "overlap_expected": float(both_exceed(b, (X @ X.T)[off]).mean()) if n > 1 else None,  # per neuron
            "overlap_sphere_expected": float(both_exceed(b, (sphere @ sphere.T)[off]).mean()) if n > 1 else None,
            "separation": separation(X),
            "ntk_lambda": float(np.linalg.eigvalsh(shifted_ntk(X, b))[0]),
        }
    per = cache[key]
    for k in ("overlap_expected", "overlap_sphere_expected"):
        out[k] = None if per[k] is None else m * per[k]
    return out | {k: per[k] for k in ("separation", "ntk_lambda")}


def fire_probability(b: float) -> float:
    """``Q(b) = P(<w, x> > b)`` for ``w ~ N(0, I_d)`` and a unit input: the chance that a
    neuron fires on one input at initialisation."""
    from scipy.special import ndtr

    return float(ndtr(-b))


def measure_point(cfg: SweepConfig, impl: str, alpha: float, x: int, rep: int, problem_cache: dict,
                  solver: str = "exact") -> dict:
    """Build a fresh trainer (with ``solver``) at grid point ``x`` and time ``cfg.steps``
    steps; never raises for a point that cannot run (unavailable, too large): the record
    says why it was skipped.

    The record carries ``n_q``, ``n Q(b)``: the expected number of inputs a neuron fires on.
    The method is sublinear in m only while it is well below 1; beyond, nearly every
    neuron fires for some input (a share ``1 - exp(-n Q(b))``) and each step touches a
    constant fraction of all m neurons."""
    spec = cfg.spec(x, alpha)
    q = fire_probability(spec.threshold)
    rec = {
        "impl": impl, "solver": solver, "vary": cfg.vary, "alpha": float(alpha), "m": spec.m, "n": spec.n,
        "d": spec.d, "dtype": cfg.dtype, "steps": cfg.steps, "seed": cfg.seed, "repeat": int(rep),
        "b": spec.threshold, "init": cfg.init, "data": cfg.data, "n_q": spec.n * q, "workers": cfg.workers,
    }
    ok, reason = registry.available(impl)
    if not ok:
        return rec | {"status": "skipped", "reason": reason}
    try:
        rec["memory_estimate"] = check_memory(impl, spec)
        t0 = time.perf_counter()
        problem, rec["weights_seconds"] = _problem(spec, problem_cache, registry.get(impl).holds_problem_weights)
        # the sampling of a sampled problem; W0's generation (shared by every implementation
        # that reads it whole, so no one build's cost) is weights_seconds
        rec["problem_seconds"] = time.perf_counter() - t0 - rec["weights_seconds"]
        trainer = registry.create(impl, problem, solver=solver)
        # |S_i ∩ S_j| at t = 0, outside the timing, from the fired pairs (not the trainer's
        # own counts, which a lazy trainer would then have ready for its first step)
        view = trainer.neuron_view()
        counts0 = view_counts(view.ptr, view.inputs, spec.n)
        measured = []  # an approximate implementation's recall and exact residual, t = 0 .. steps
        between = None if trainer.exact else (lambda tr: measured.append(measure_recall(tr)))
        per_iter, infos = time_steps(trainer, cfg.steps, between)
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
        "gram_condition": [i.gram_condition for i in infos],
        "solver_iterations": [i.solver_iterations for i in infos],
        "solver_residual": [i.solver_residual for i in infos],
        "data_source": problem.data,
        **data_effects(problem, counts0, problem_cache),
        **({"recall": [x["recall"] for x in measured], "exact_residual": [x["residual"] for x in measured]}
           if measured else {}),
        "finished_at": time.time(),
    }
    if cfg.workers:
        rec["shards"] = trainer.shards
        rec["shard_build_seconds"] = trainer.shard_build_seconds
    del trainer
    return rec
