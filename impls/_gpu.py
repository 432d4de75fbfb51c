"""Finding CuPy and a CUDA device, without needing either to import or list."""

from __future__ import annotations

import functools

INSTALL_HINT = "install the gpu extra: pip install -e .[gpu]"


@functools.lru_cache(maxsize=1)
def cupy_status():
    """``(cupy module, "")`` when CuPy imports and sees a CUDA device, else
    ``(None, reason)``. Probed once per process (device probing can be slow)."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA runtime during import
        return None, f"CuPy is not importable ({type(exc).__name__}: {exc}); {INSTALL_HINT}"
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:
        return None, f"CuPy is installed but no CUDA device is usable ({type(exc).__name__}: {exc})"
    if count < 1:
        return None, "CuPy is installed but no CUDA device was found"
    return cupy, ""


def require_cupy():
    cp, reason = cupy_status()
    if cp is None:
        from sublin_bench.errors import UnavailableError

        raise UnavailableError(reason)
    return cp


def check_device_fits(cp, estimate: int, what: str) -> None:
    """Refuse (MemoryBudgetError) a configuration that will not fit in the device's free
    memory, before allocating it."""
    from sublin_bench.errors import MemoryBudgetError
    from sublin_bench.memory import MEMORY_FRACTION, format_bytes

    free, _total = cp.cuda.Device().mem_info
    if estimate > MEMORY_FRACTION * free:
        raise MemoryBudgetError(
            f"{what} needs about {format_bytes(estimate)} of GPU memory, but only {format_bytes(free)} "
            "is free on the device. Use a smaller m or n, or float32."
        )
