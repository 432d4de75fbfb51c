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
from importlib.metadata import entry_points

from .errors import ConfigError, UnavailableError, UnknownImplementationError
from .interface import Trainer
from .memory import check_fits
from .problem import Problem

__all__ = ["GROUP", "names", "available", "get", "create", "register", "unregister", "memory_estimate"]

GROUP = "sublin_bench.impls"

_targets: dict[str, str] | None = None  # name -> "module:attr" from entry points
_loaded: dict[str, type[Trainer]] = {}
_load_errors: dict[str, str] = {}
_extra: dict[str, type[Trainer]] = {}  # registered in-process


def _discover() -> dict[str, str]:
    global _targets
    if _targets is None:
        _targets = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    return _targets


def names() -> list[str]:
    """Every registered implementation name, ``dense`` first, the rest sorted."""
    found = set(_discover()) | set(_extra)
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
    """Bytes that ``create(name, make_problem(spec))`` would allocate, problem included."""
    return get(name).memory_estimate(spec) + spec.memory_estimate()


def create(name: str, problem: Problem, *, step_size: float = 1.0, **options) -> Trainer:
    """Build the trainer ``name`` on ``problem``.

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
    check_fits(cls.memory_estimate(problem.spec), f"the {name!r} trainer for {problem.spec.describe()}")
    return cls(problem, step_size=step_size, **options)


def register(name: str, cls: type[Trainer]) -> None:
    """Register ``cls`` as ``name`` for this process (entry points are the durable way)."""
    if not (isinstance(cls, type) and issubclass(cls, Trainer)):
        raise ConfigError(f"register() needs a Trainer subclass, got {cls!r}.")
    _extra[name] = cls


def unregister(name: str) -> None:
    """Undo :func:`register`."""
    _extra.pop(name, None)
