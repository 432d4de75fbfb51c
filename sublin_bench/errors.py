"""Exceptions raised for bad input.

Every error the harness raises on purpose derives from :class:`SublinError`, so that the
CLI can print its message and exit non-zero without a traceback. Messages name the
offending value and say what to do instead.
"""

from __future__ import annotations


class SublinError(Exception):
    """Base class of every deliberate sublin-bench error."""


class ConfigError(SublinError, ValueError):
    """A size, parameter or array that is not valid."""


class UnknownImplementationError(SublinError, KeyError):
    """An implementation name that no entry point registers."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnavailableError(SublinError, RuntimeError):
    """An implementation that is registered but cannot run here (with the reason)."""


class MemoryBudgetError(SublinError, MemoryError):
    """A configuration whose memory estimate exceeds what this machine has available."""


class DivergenceError(SublinError, FloatingPointError):
    """A training run whose residual or predictions stopped being finite (a step size far
    too large, or an ill-posed problem): reported with the step and the step size."""


class SolverWarning(UserWarning):
    """An iterative solve that stopped short of its tolerance (iteration limit, or a
    rank-deficient Gram matrix for ``cg``): the step was taken with the ``g`` it reached,
    and ``StepInfo.solver_residual`` says how far off it is."""
