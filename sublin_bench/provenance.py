"""Where a result came from, and the thread settings it was measured under.

Every record a sweep writes carries :func:`provenance`: the commit of the code (and
whether the working tree had uncommitted changes, with a hash of them), the package and
problem-generator versions, the versions of Python, numpy, scipy, numba and every BLAS
library loaded, the BLAS and numba thread counts in force, how long OpenBLAS's idle
threads spin (``OPENBLAS_THREAD_TIMEOUT``, see :mod:`sublin_bench`), and the host. A sweep resumes
only over records whose provenance is equal to the current one (see
:func:`provenance_differences`); anything else is refused with the differences named,
so two states of the code, two machines or two thread settings are never pooled into
one fit.

Threads are set explicitly (:func:`set_threads`), through threadpoolctl for every BLAS
copy in the process (numpy and scipy each ship their own OpenBLAS) and through
``numba.set_num_threads``, rather than left to whatever the environment implies.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
from pathlib import Path

__all__ = ["provenance", "code_state", "set_threads", "thread_counts", "provenance_differences", "describe"]

#: Keys of a provenance record that must be equal for two results to be pooled.
IDENTITY = (
    "sublin_bench", "generator", "commit", "dirty", "diff", "python", "numpy", "scipy", "numba", "blas",
    "blas_threads", "numba_threads", "blas_thread_timeout", "host", "cpu",
)


@functools.lru_cache(maxsize=1)
def code_state() -> dict:
    """``commit`` (or ``"unknown"`` outside a git checkout, e.g. installed from a wheel),
    ``dirty`` (uncommitted changes to tracked files) and ``diff`` (sha256 prefix of
    ``git diff HEAD``, so two different uncommitted states are told apart)."""
    root = Path(__file__).resolve().parents[1]

    def git(*args):
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
        if out.returncode != 0:
            raise OSError(out.stderr.strip())
        return out.stdout

    try:
        if Path(git("rev-parse", "--show-toplevel").strip()).resolve() != root:
            raise OSError("the package is not at the top of this git work tree")
        commit = git("rev-parse", "HEAD").strip()
        diff = git("diff", "HEAD", "--no-ext-diff", "--binary")
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None, "diff": None}
    dirty = bool(diff)
    return {
        "commit": commit,
        "dirty": dirty,
        "diff": hashlib.sha256(diff.encode()).hexdigest()[:16] if dirty else None,
    }


def thread_counts() -> dict:
    """The BLAS thread count (the largest over the loaded BLAS libraries) and numba's."""
    import numba
    from threadpoolctl import threadpool_info

    blas = [i.get("num_threads", 0) for i in threadpool_info() if i.get("user_api") == "blas"]
    return {"blas_threads": max(blas) if blas else None, "numba_threads": int(numba.get_num_threads())}


def set_threads(threads: int | None):
    """Limit every BLAS library and numba to ``threads`` threads for the rest of the
    process (``None``: leave both as they are). Returns the threadpoolctl controller.

    Raises :class:`~sublin_bench.errors.ConfigError` for a count outside
    ``1 .. numba.config.NUMBA_NUM_THREADS``.
    """
    if threads is None:
        return None
    import numba
    from threadpoolctl import threadpool_limits

    from .errors import ConfigError

    top = int(numba.config.NUMBA_NUM_THREADS)
    if isinstance(threads, bool) or not isinstance(threads, int) or not (1 <= threads <= top):
        raise ConfigError(f"threads must be an integer in 1..{top} (the cores numba sees), got {threads!r}.")
    numba.set_num_threads(threads)
    return threadpool_limits(limits=threads, user_api="blas")


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict:
    """What a result was measured with: code, versions, threads and host (see the module
    docstring). Cheap after the first call (the git state is cached)."""
    import numba
    import numpy as np
    import scipy
    from threadpoolctl import threadpool_info

    from . import _BLAS_THREAD_TIMEOUT, __version__
    from .problem import GENERATOR_VERSION

    blas = sorted(
        f"{i.get('internal_api')} {i.get('version')} ({i.get('threading_layer', '?')})"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    )
    return {
        "sublin_bench": __version__,
        "generator": GENERATOR_VERSION,
        **code_state(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
        "blas": "; ".join(blas),
        **thread_counts(),
        "blas_thread_timeout": _BLAS_THREAD_TIMEOUT,  # OpenBLAS's idle spin, log2 cycles (see sublin_bench)
        "host": platform.node(),
        "cpu": _cpu(),
        "cores": os.cpu_count(),
    }


def provenance_differences(old: dict | None, new: dict) -> list[str]:
    """``key: old -> new`` for every identity key that differs (all of them, if ``old``
    is missing: a record written before provenance was recorded)."""
    if not isinstance(old, dict):
        return ["no provenance recorded (written by an older sublin-bench)"]
    out = []
    for key in IDENTITY:
        if old.get(key) != new.get(key):
            a, b = old.get(key), new.get(key)
            if key == "commit" and isinstance(a, str) and isinstance(b, str):
                a, b = a[:10], b[:10]
            out.append(f"{key}: {a} -> {b}")
    return out


def describe(prov: dict) -> str:
    """One line: ``commit 45e41e6 (clean), sublin-bench 0.1.0, generator 2, ...``."""
    commit = str(prov.get("commit", "unknown"))[:10]
    state = {True: f"dirty, diff {prov.get('diff')}", False: "clean"}.get(prov.get("dirty"), "not a git checkout")
    return (
        f"commit {commit} ({state}), sublin-bench {prov.get('sublin_bench')}, generator {prov.get('generator')}, "
        f"numpy {prov.get('numpy')}, numba {prov.get('numba')}, BLAS {prov.get('blas')}, "
        f"threads BLAS {prov.get('blas_threads')} / numba {prov.get('numba_threads')}, host {prov.get('host')}"
    )
