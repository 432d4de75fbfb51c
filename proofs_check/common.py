"""What every check shares: the result type, verdict words, and the recorded trajectory."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

from sublin_bench import ProblemSpec, make_problem, registry

HOLDS, FAILS, NA = "holds", "fails", "not applicable"


@dataclass
class CheckResult:
    """One statement, measured.

    Attributes
    ----------
    key : str
        Short identifier (the module name).
    statement : str
        The statement in one sentence.
    source : str
        Paper and result number where known.
    parameters : dict
        Sizes and settings of the measurement.
    measured : dict
        The measured values.
    bound : dict
        The bound or prediction they are compared with.
    verdict : str
        ``holds``, ``fails`` or ``not applicable`` (at this size).
    margin : float or None
        How far inside (positive) or outside (negative) the bound, as a ratio or
        difference explained in ``detail``.
    detail : str
        A sentence explaining the verdict.
    series : dict
        Data for plots (not printed).
    """

    key: str
    statement: str
    source: str
    parameters: dict
    measured: dict
    bound: dict
    verdict: str
    margin: float | None
    detail: str
    series: dict = field(default_factory=dict)

    def as_dict(self, series: bool = False) -> dict:
        out = asdict(self)
        if not series:
            out.pop("series")
        return _jsonable(out)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else str(v)
    if isinstance(x, np.integer):
        return int(x)
    return x


@dataclass(frozen=True)
class Sizes:
    """Sizes of a proofs run."""

    ms: tuple
    n: int
    d: int
    steps: int
    seed: int = 0
    init: str = "plain"
    data: str = "sphere"

    @property
    def m(self) -> int:
        """The width used by single-width checks: the largest of the grid."""
        return self.ms[-1]


QUICK = Sizes(ms=tuple(2**k for k in range(10, 15)), n=16, d=16, steps=6)
FULL = Sizes(ms=tuple(2**k for k in range(12, 21)), n=32, d=32, steps=8)


@dataclass
class Trajectory:
    """Per-step record of one training run (state t = 0 .. steps)."""

    fired: np.ndarray  # (steps+1, n) |S_i(t)|
    flips: np.ndarray  # (steps, n) |S_i(t+1) Δ S_i(t)|
    residual: np.ndarray  # (steps+1,) ||f_t - y||
    gram_min_eig: np.ndarray  # (steps+1,) λ_min(G(t))
    movement: np.ndarray  # (steps+1,) max_r ||w_r(t) - w_r(0)||
    work: np.ndarray  # (steps,) counted work per step
    b: float


def _row_sets(csr):
    indptr, indices = csr
    return [indices[indptr[i] : indptr[i + 1]] for i in range(indptr.size - 1)]


#: Up to this many weight entries, movement is measured on all of W (so a planted faulty
#: implementation that moves a neuron it should not is seen); beyond, on the neurons
#: fired so far (the only ones a step moves), through ``weights_at``.
_WHOLE_ENTRIES = 1 << 25


def record(trainer, steps: int) -> Trajectory:
    """Train ``steps`` steps, recording everything the checks need. Uses only the public
    interface, so any implementation (or a planted faulty one) can be measured."""
    p = trainer.problem
    whole = p.m * p.d <= _WHOLE_ENTRIES or not hasattr(trainer, "weights_at")
    W0 = p.W0.astype(np.float64) if whole else None
    moved = np.empty(0, dtype=np.int64)  # every neuron fired so far: the only ones that can have moved
    fired, flips, residual, mins, moves, work = [], [], [], [], [], []
    sets = _row_sets(trainer.active_sets())
    for t in range(steps + 1):
        fired.append([s.size for s in sets])
        residual.append(float(np.linalg.norm(trainer.predict() - p.y)))
        mins.append(float(np.linalg.eigvalsh(trainer.gram())[0]))
        if whole:
            moves.append(float(np.linalg.norm(trainer.weights().astype(np.float64) - W0, axis=1).max()))
        else:
            delta = trainer.weights_at(moved).astype(np.float64) - p.w0_at(moved).astype(np.float64)
            moves.append(float(np.linalg.norm(delta, axis=1).max()) if moved.size else 0.0)
            moved = np.union1d(moved, np.concatenate(sets) if sets else moved)
        if t == steps:
            break
        info = trainer.step()
        work.append(info.work.get("work", 0))
        new = _row_sets(trainer.active_sets())
        flips.append([np.setxor1d(a, b_, assume_unique=True).size for a, b_ in zip(sets, new)])
        sets = new
    return Trajectory(
        fired=np.array(fired), flips=np.array(flips).reshape(steps, -1), residual=np.array(residual),
        gram_min_eig=np.array(mins), movement=np.array(moves), work=np.array(work, dtype=float), b=p.b,
    )


@lru_cache(maxsize=64)
def trajectory(impl: str, m: int, n: int, d: int, alpha: float, steps: int, seed: int = 0,
               init: str = "plain", data: str = "sphere") -> Trajectory:
    """The recorded trajectory of ``impl`` on the generated problem (cached per run)."""
    spec = ProblemSpec(m=m, n=n, d=d, alpha=alpha, seed=seed, init=init, data=data)
    return record(registry.create(impl, make_problem(spec)), steps)


def trajectory_for(impl: str, m: int, sizes: Sizes, alpha: float) -> Trajectory:
    return trajectory(impl, m, sizes.n, sizes.d, float(alpha), sizes.steps, sizes.seed, sizes.init, sizes.data)


def fit_exponent(ms, values_per_m) -> tuple[float, float, float]:
    """Slope of log(value) on log(m) with its 95% t-interval (``values_per_m``: one
    array of positive values per m; their medians are fitted)."""
    from sublin_bench.scaling import fit_slope

    samples = {int(m): list(np.atleast_1d(v)) for m, v in zip(ms, values_per_m)}
    fit = fit_slope(samples, only=list(samples))
    return fit.slope, fit.t_low, fit.t_high


def converged(residual: np.ndarray, rel: float = 1e-10) -> int:
    """Index of the first state whose residual is at rounding level (``rel`` times the
    first), or the number of states if none is."""
    residual = np.asarray(residual)
    idx = np.flatnonzero(residual <= rel * max(residual[0], 1e-300))
    return int(idx[0]) if idx.size else residual.size
