"""sublin-bench: benchmark and verification harness for sublinear-time training of
overparametrized two-layer shifted-ReLU networks.

>>> from sublin_bench import ProblemSpec, make_problem, registry
>>> trainer = registry.create("dense", make_problem(ProblemSpec(m=512, n=8, d=4, alpha=0.24)))
>>> info = trainer.step()
"""

import os as _os
import sys as _sys

#: OpenBLAS's idle worker threads spin for ``2**OPENBLAS_THREAD_TIMEOUT`` cycles (default
#: 28: about 0.1 s) after every threaded call before they sleep. A parallel numba kernel
#: run in that window shares the cores with them: band-implicit's step right after a
#: threaded build ran up to 4x slower (31 ms against 8 ms at m = 2^28, alpha 0.5, in a
#: third of the repeats). Where the environment does not set it and numpy is not loaded
#: yet (OpenBLAS reads it once, when numpy loads it), it is set to 4: idle workers sleep
#: at once, and waking them costs microseconds against the milliseconds of the products
#: that use them. :func:`sublin_bench.provenance.provenance` records the value in force.
#: Where numpy came first, OpenBLAS read whatever the environment held (28 if nothing);
#: that value is written back to the environment, so that the processes started from
#: here (a converge run's fresh processes, local Dask workers) run and record the same.
BLAS_THREAD_TIMEOUT_DEFAULT = "4"
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "28" if "numpy" in _sys.modules else BLAS_THREAD_TIMEOUT_DEFAULT)
_BLAS_THREAD_TIMEOUT = _os.environ["OPENBLAS_THREAD_TIMEOUT"]

from . import registry  # noqa: E402
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
