"""Memory estimates and the check that refuses a configuration before allocating it."""

from __future__ import annotations

import psutil

from .errors import MemoryBudgetError

#: Fraction of the currently available memory a single configuration may claim. The rest
#: is headroom for the interpreter, BLAS work buffers and the operating system.
MEMORY_FRACTION = 0.85


def available_bytes() -> int:
    """Memory available to a new allocation right now, in bytes."""
    return int(psutil.virtual_memory().available)


def format_bytes(n: float) -> str:
    """Human-readable size: ``format_bytes(3 * 2**30) == '3.00 GiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_fits(estimate: int, what: str, available: int | None = None) -> None:
    """Raise :class:`MemoryBudgetError` when ``estimate`` bytes would not fit.

    Parameters
    ----------
    estimate
        Bytes the configuration will allocate.
    what
        Description used in the message (e.g. ``"tree trainer for m=2**24, n=64"``).
    available
        Override of the available memory (tests use it); defaults to
        :func:`available_bytes`.
    """
    avail = available_bytes() if available is None else int(available)
    budget = int(avail * MEMORY_FRACTION)
    if estimate > budget:
        raise MemoryBudgetError(
            f"{what} needs about {format_bytes(estimate)}, but only {format_bytes(avail)} "
            f"is available ({MEMORY_FRACTION:.0%} of it may be used). "
            "Use a smaller m or n, float32, or a machine with more memory."
        )
