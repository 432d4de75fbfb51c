"""sublin-bench: benchmark and verification harness for sublinear-time training of
overparametrized two-layer shifted-ReLU networks.

>>> from sublin_bench import ProblemSpec, make_problem, registry
>>> trainer = registry.create("dense", make_problem(ProblemSpec(m=512, n=8, d=4, alpha=0.24)))
>>> info = trainer.step()
"""

from . import registry
from .errors import (
    ConfigError,
    MemoryBudgetError,
    SublinError,
    UnavailableError,
    UnknownImplementationError,
)
from .interface import StepInfo, Trainer, UpdateResult
from .problem import Problem, ProblemSpec, make_problem, threshold_for

__version__ = "0.1.0"

__all__ = [
    "ProblemSpec",
    "Problem",
    "make_problem",
    "threshold_for",
    "registry",
    "Trainer",
    "StepInfo",
    "UpdateResult",
    "SublinError",
    "ConfigError",
    "MemoryBudgetError",
    "UnavailableError",
    "UnknownImplementationError",
]
