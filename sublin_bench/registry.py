"""Discovery and construction of implementations.

Implementations register through the entry-point group ``sublin_bench.impls``::

    [project.entry-points."sublin_bench.impls"]
    mine = "my_package.module:MyTrainer"

An outside package that declares such an entry point is listed, verified and benchmarked
by the same suite as the built-in ones. :func:`register` adds one in-process (for tests and
notebooks).
"""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import entry_points

from .errors import ConfigError, UnavailableError, UnknownImplementationError
from .interface import Trainer
from .linalg import solve_memory_estimate
from .memory import check_fits
from .problem import Problem

__all__ = ["GROUP", "names", "available", "get", "create", "register", "unregister", "memory_estimate"]

GROUP = "sublin_bench.impls"

#: The implementations this package ships, by name. They are resolved from this table and
#: never from installed metadata, so which class a built-in name means cannot depend on
#: which copies of the package's metadata the interpreter happens to see (an editable
#: install run from the repository root sees a second, possibly stale, ``*.egg-info``).
#: pyproject.toml declares the same entry points (tests/test_registry.py keeps the two
#: equal) so that tools reading metadata list them too.
BUILTINS = {
    "dense": "sublin_bench.impls.dense:DenseTrainer",
    "tree": "sublin_bench.impls.tree:TreeTrainer",
    "band": "sublin_bench.impls.band:BandTrainer",
    "cupy-dense": "sublin_bench.impls.cupy_dense:CupyDenseTrainer",
    "cupy": "sublin_bench.impls.cupy_band:CupyBandTrainer",
    "band-implicit": "sublin_bench.impls.band_implicit:BandImplicitTrainer",
    "dense-stream": "sublin_bench.impls.dense_stream:DenseStreamTrainer",
    "lsh": "sublin_bench.impls.lsh:LSHTrainer",
}
_OWN_DIST = "sublin-bench"

_targets: dict[str, str] | None = None  # name -> "module:attr"
_conflicts: dict[str, str] = {}  # name -> why (part of) its registration was refused
_loaded: dict[str, type[Trainer]] = {}
_load_errors: dict[str, str] = {}
_extra: dict[str, type[Trainer]] = {}  # registered in-process


def _dist_name(ep) -> str:
    dist = getattr(ep, "dist", None)
    name = dist.metadata["Name"] if dist is not None and dist.metadata["Name"] else "an unknown distribution"
    return name.lower().replace("_", "-").replace(".", "-")


def _discover() -> dict[str, str]:
    """Resolve every name once: built-ins from :data:`BUILTINS`, plug-ins from the entry
    points of other distributions.

    A plug-in may not take a built-in name (it is refused and the built-in kept), and a
    name that two plug-ins claim with different targets is refused for both (neither is
    used): the outcome never depends on the order in which metadata is found. The same
    entry point seen twice (two copies of one distribution's metadata) counts once.
    """
    global _targets
    if _targets is None:
        claims: dict[str, set] = {}
        for ep in entry_points(group=GROUP):
            dist = _dist_name(ep)
            if dist == _OWN_DIST:
                continue  # built-ins come from BUILTINS
            claims.setdefault(ep.name, set()).add((dist, ep.value))
        targets = dict(BUILTINS)
        _conflicts.clear()
        for name, owners in sorted(claims.items()):
            owners = sorted(owners)
            listed = "; ".join(f"{value} from {dist}" for dist, value in owners)
            if name in BUILTINS:
                _conflicts[name] = (
                    f"plug-in entry point(s) {listed} also register {name!r}, the name of the built-in "
                    f"{BUILTINS[name]} from {_OWN_DIST}; they are refused and the built-in is used. "
                    "Register the plug-in under a name of its own."
                )
            elif len(owners) > 1:
                _conflicts[name] = (
                    f"{name!r} is registered by several plug-ins ({listed}); none of them is used until "
                    "all but one are renamed or uninstalled."
                )
            else:
                targets[name] = owners[0][1]
        _targets = targets
    return _targets


def conflicts() -> dict[str, str]:
    """Names whose registration was (partly) refused, with the reason (for ``list`` and
    ``verify`` to show)."""
    _discover()
    return dict(_conflicts)


def names() -> list[str]:
    """Every registered implementation name, ``dense`` first, the rest sorted (names
    refused because two plug-ins claim them included: they are listed unavailable)."""
    found = set(_discover()) | set(_extra) | set(_conflicts)
    return sorted(found, key=lambda s: (s != "dense", s))


def _unknown(name: str) -> UnknownImplementationError:
    known = ", ".join(names()) or "(none: is sublin-bench installed with pip install -e .?)"
    return UnknownImplementationError(f"unknown implementation {name!r}; known: {known}.")


def get(name: str) -> type[Trainer]:
    """The Trainer class registered as ``name`` (imported on first use).

    Raises
    ------
    UnknownImplementationError
        If no entry point has that name.
    UnavailableError
        If its module fails to import (the import error is the reason).
    """
    if name in _extra:
        return _extra[name]
    if name in _loaded:
        return _loaded[name]
    targets = _discover()
    if name not in targets:
        if name in _conflicts:
            raise UnavailableError(f"implementation {name!r} cannot be used: {_conflicts[name]}")
        raise _unknown(name)
    if name in _load_errors:
        raise UnavailableError(f"implementation {name!r} cannot be loaded: {_load_errors[name]}")
    module, _, attr = targets[name].partition(":")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # a plugin's import failure must not break listing
        _load_errors[name] = f"{type(exc).__name__}: {exc}"
        raise UnavailableError(f"implementation {name!r} cannot be loaded: {_load_errors[name]}") from None
    if not (isinstance(obj, type) and issubclass(obj, Trainer)):
        _load_errors[name] = f"{targets[name]} is not a sublin_bench.Trainer subclass"
        raise UnavailableError(f"implementation {name!r} cannot be loaded: {_load_errors[name]}")
    _loaded[name] = obj
    return obj


def available(name: str) -> tuple[bool, str]:
    """``(True, "")`` if ``name`` can run here, else ``(False, reason)``.

    Unknown names raise :class:`UnknownImplementationError`.
    """
    try:
        cls = get(name)
    except UnavailableError as exc:
        return False, str(exc)
    ok, reason = cls.available()
    return bool(ok), ("" if ok else str(reason))


def memory_estimate(name: str, spec) -> int:
    """Bytes that ``create(name, make_problem(spec))`` would allocate: the problem, the
    trainer, and the ``n x n`` arrays of the Gram matrix and its solve."""
    cls = get(name)
    problem = spec.memory_estimate() if cls.holds_problem_weights else spec.inputs_memory_estimate()
    return cls.memory_estimate(spec) + problem + solve_memory_estimate(spec.n)


def create(name: str, problem: Problem, *, step_size: float = 1.0, solver="exact", **options) -> Trainer:
    """Build the trainer ``name`` on ``problem``, solving its Gauss-Newton systems with
    ``solver`` (a name from :data:`sublin_bench.solvers.SOLVERS`, or a Solver from
    ``solvers.make_solver(name, **options)``); every implementation takes every solver.
    Within :func:`sublin_bench.sharding.sharded` the trainer is sharded over the cluster's
    workers (:class:`~sublin_bench.sharding.ShardedTrainer`).

    The memory estimate is checked against the available memory first, so an oversized
    configuration is refused before anything is allocated.

    Examples
    --------
    >>> from sublin_bench import ProblemSpec, make_problem
    >>> t = create("dense", make_problem(ProblemSpec(m=256, n=4, d=3, alpha=0.24)))
    >>> t.predict().shape
    (4,)
    """
    if not isinstance(name, str):
        raise ConfigError(f"implementation name must be a string, got {name!r}.")
    cls = get(name)
    ok, reason = cls.available()
    if not ok:
        raise UnavailableError(f"implementation {name!r} is not available here: {reason}")
    if not isinstance(problem, Problem):
        raise ConfigError(
            f"create() needs a Problem (from make_problem or Problem.from_arrays), got {type(problem).__name__}."
        )
    accepted = options_of(cls)
    unknown = sorted(set(options) - accepted) if accepted is not None else []
    if unknown:
        takes = ", ".join(sorted(accepted - {"step_size"})) or "no options"
        raise ConfigError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for implementation {name!r}; "
            f"it takes step_size and {takes}."
        )
    from .solvers import make_solver

    chosen = make_solver(solver)  # a bad name is refused before anything is built
    from .sharding import current

    cluster = current()
    if cluster is not None:  # within sharding.sharded(): shards on the workers (each checks its memory there)
        return cluster.create(name, problem, step_size=step_size, solver=chosen, **options)
    spec = problem.spec
    check_fits(cls.memory_estimate(spec) + solve_memory_estimate(spec.n), f"the {name!r} trainer for {problem.spec.describe()}")
    trainer = cls(problem, step_size=step_size, **options)
    trainer.solver = chosen
    return trainer


def options_of(cls: type[Trainer]) -> set[str] | None:
    """The keyword options ``cls(problem, ...)`` accepts, from the signatures of the
    ``__init__`` methods along its MRO (down to the first one without ``**kwargs``);
    ``None`` if every one of them takes ``**kwargs`` (anything is passed on)."""
    accepted: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = list(inspect.signature(init).parameters.values())[1:]  # skip self
        open_ended = False
        for p in params:
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                open_ended = True
            elif p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
                accepted.add(p.name)
        if not open_ended:
            accepted.discard("problem")
            return accepted
    return None


def register(name: str, cls: type[Trainer]) -> None:
    """Register ``cls`` as ``name`` for this process (entry points are the durable way).

    A name that is already taken (a built-in, a plug-in, or an earlier registration of
    another class) is refused: the reference ``dense`` in particular cannot be replaced.
    Registering the same class under the same name again does nothing.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"register() needs a non-empty name, got {name!r}.")
    if not (isinstance(cls, type) and issubclass(cls, Trainer)):
        raise ConfigError(f"register() needs a Trainer subclass, got {cls!r}.")
    if _extra.get(name) is cls:
        return
    taken = _extra[name] if name in _extra else _discover().get(name)
    if taken is not None or name in _conflicts:
        what = f"{taken.__module__}.{taken.__qualname__}" if isinstance(taken, type) else (taken or _conflicts[name])
        raise ConfigError(
            f"cannot register {cls.__module__}.{cls.__qualname__} as {name!r}: the name is already taken by "
            f"{what}. Choose another name (unregister() an in-process registration first to replace it)."
        )
    _extra[name] = cls


def unregister(name: str) -> None:
    """Undo :func:`register`."""
    _extra.pop(name, None)
