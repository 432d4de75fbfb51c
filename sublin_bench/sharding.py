"""Any implementation sharded over neurons on a Dask cluster (``pip install -e ".[dist]"``).

The mathematics splits over neurons: cut the m neurons into k disjoint ranges and

* the predictions are a sum of per-shard partial predictions,
  ``f_i = sum_s sqrt(m_s / m) f_i^(s)`` with ``f^(s)`` the shard's network of width
  ``m_s`` (scaled by ``1 / sqrt(m_s)``);
* the intersection counts ``|S_i ∩ S_j|`` are a sum of per-shard counts (exact integers);
* ``g`` is solved once on the driver from the reduced ``n x n`` Gram (the exact solve);
* each shard applies the update to its own neurons with ``g sqrt(m_s / m)``, which is
  ``w_r <- w_r - eta (a_r / sqrt m) sum_i g_i x_i`` exactly up to one rounding of the scale.

Every shard is a stateful trainer of the chosen implementation living on one worker, over a
:class:`ShardProblem`: the neurons ``lo .. hi-1`` of the problem, regenerated on the worker
from the seed (the generator's blocks, :mod:`sublin_bench.generator`), so no weights cross
the network. Per step one message goes to every shard (``g``, n numbers) and one comes back
(its flips, moved neurons and work counters, and its partial predictions and counts for the
next step: n + n^2 numbers).

Why Dask actors
---------------
A shard is state that changes in place every step (the weights, the index). Actors are
Dask's object for exactly that: the object stays on its worker and method calls are direct
worker-to-client messages, one round trip per step (3 ms for two workers here, measured in
the README's sharding section), with no task graph and no scheduler in the step's path.
Pinned futures would hand the state from task to task as new futures every step, through
the scheduler, and Dask assumes task results are immutable, which a trainer mutated in
place is not. What actors do not give: resilience. If a worker dies its shard's state is
gone; the next call raises :class:`ShardLostError` at once (or at the call's timeout), the
trainer releases everything it holds, and the run is started again (a new trainer rebuilds
every shard from the seed; the nanny has restarted the worker meanwhile).

Numba inside workers
--------------------
Workers run one thread each (``threads_per_worker=1`` and ``NUMBA_NUM_THREADS=1``,
``OMP_NUM_THREADS=1``, ``OPENBLAS_NUM_THREADS=1`` in their environment for the local
cluster; start your own workers the same way, see the README). numba's ``cache=True``
writes its cache files without a lock between processes, so the driver compiles (or loads)
every kernel the implementation uses *before* the shards are created; the workers then only
read the cache. A worker that finds no cache (another machine) compiles its own copy into
its own ``NUMBA_CACHE_DIR`` (set one per worker on shared file systems).

Limits
------
* Plain problems only (``init="plain"``): a sampled problem's candidates are drawn jointly
  over all m, so no shard can draw its own part of them.
* The exact solver only: the iterative solvers' ``J v`` products are not sharded.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import os
import time
from collections import Counter

import numpy as np

from . import registry
from .errors import ConfigError, SublinError
from .generator import W_BLOCK, block_count, plain_block, signs
from .interface import Trainer, UpdateResult
from .linalg import indptr_from_counts, rows_of
from .memory import check_fits
from .problem import Problem

__all__ = ["ShardProblem", "ShardedTrainer", "ShardLostError", "Cluster", "shard_bounds", "sharded", "current"]

#: Seconds a shard may take to answer one call (build, step) before the run is stopped.
DEFAULT_TIMEOUT = 600.0
#: Seconds to reach a scheduler.
CONNECT_TIMEOUT = 10.0
#: The environment of local workers: one thread each, for numba and BLAS alike.
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}


class ShardLostError(SublinError, RuntimeError):
    """A shard's worker died or stopped answering: its neurons' state is gone."""


def _need_dask():
    try:
        import distributed

        return distributed
    except ImportError:
        raise ConfigError(
            "sharding needs Dask distributed, which is not installed: pip install -e \".[dist]\"."
        ) from None


# -- a range of neurons as a problem of its own ----------------------------------------------


class ShardProblem(Problem):
    """The neurons ``lo .. hi-1`` of a plain problem, as a problem of width ``hi - lo``
    with the parent's inputs, labels and threshold ``b``: its block ``k`` is rows
    ``lo + k W_BLOCK ..`` of the parent's ``W0``, regenerated from the parent's seed (one
    parent block per block when ``lo`` is a multiple of ``W_BLOCK``, two otherwise), and its
    signs are the parent's ``a_{lo + r}``. A trainer on it computes the shard's network,
    scaled by ``1 / sqrt(hi - lo)``; :class:`ShardedTrainer` rescales."""

    __slots__ = ("_parent", "_lo")

    def __init__(self, parent: Problem, lo: int, hi: int, *, W0=None, a=None):
        if parent.sample is not None:
            raise ConfigError("a sampled problem cannot be sharded (its candidates are drawn jointly over all m); "
                              "use init='plain'.")
        lo, hi = int(lo), int(hi)
        if not 0 <= lo < hi <= parent.m:
            raise ConfigError(f"a shard needs 0 <= lo < hi <= m = {parent.m}, got {lo}..{hi}.")
        spec = parent.spec.replace(m=hi - lo, b=parent.b)
        super().__init__(parent.X, parent.y, W0=W0, a=a, b=parent.b, spec=spec, source=parent.source,
                         data=parent.data)
        object.__setattr__(self, "_parent", parent)
        object.__setattr__(self, "_lo", lo)

    @property
    def lo(self) -> int:
        return self._lo

    def _fill_block(self, k, out):
        out[...] = self.w0_block(k, copy=False)

    def a_at(self, idx) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        if self._a is not None:
            return self._a[idx]
        return self._parent.a_at(idx + self._lo)

    def w0_block(self, k: int, *, copy: bool = True) -> np.ndarray:
        if self._W0 is not None:
            return super().w0_block(k, copy=copy)
        start, stop = k * W_BLOCK, min(self.m, (k + 1) * W_BLOCK)
        if not 0 <= start < stop:
            raise ConfigError(f"block {k} is outside this shard's {block_count(self.m)} blocks.")
        lo = self._lo
        if lo % W_BLOCK == 0:
            return self._parent.w0_block(lo // W_BLOCK + k, copy=copy)[: stop - start]
        return self._parent.w0_rows(lo + start, lo + stop)

    def narrowed(self, spec):
        raise ConfigError("a shard cannot be narrowed; shard the narrower problem instead.")


def shard_bounds(m: int, shards: int, bounds=None) -> list[tuple[int, int]]:
    """The neuron ranges of ``shards`` shards: ``bounds`` (``[0, b_1, ..., m]``, increasing)
    if given, else as even as possible, on the generator's block boundaries where there are
    at least as many blocks as shards (each shard then regenerates whole blocks)."""
    m = int(m)
    if bounds is not None:
        b = [int(x) for x in bounds]
        if len(b) < 2 or b[0] != 0 or b[-1] != m or any(x >= y for x, y in zip(b, b[1:])):
            raise ConfigError(f"shard bounds must increase strictly from 0 to m = {m}, got {list(bounds)}.")
        return list(zip(b, b[1:]))
    if isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 1:
        raise ConfigError(f"the number of shards must be a positive integer, got {shards!r}.")
    if shards > m:
        raise ConfigError(f"{shards} shards for m = {m} neurons: every shard needs at least one neuron; "
                          f"use at most {m} shards (--workers).")
    blocks = block_count(m)
    if blocks >= shards:
        cuts = [min(m, (blocks * s // shards) * W_BLOCK) for s in range(shards + 1)]
    else:
        cuts = [m * s // shards for s in range(shards + 1)]
    return list(zip(cuts, cuts[1:]))


def _regenerable(problem: Problem, lo: int, hi: int) -> bool:
    """Whether the rows ``lo .. hi-1`` that ``problem`` holds in memory are the seed's (then
    the workers regenerate them; else they are sent). Checked on the first row of every
    block and every sign of a sample of rows."""
    if problem._W0 is None and problem._a is None:
        return True
    d, seed = problem.d, problem.spec.seed
    for k in range(lo // W_BLOCK, block_count(hi)):
        r = max(lo, k * W_BLOCK)
        row = plain_block(seed, k, r - k * W_BLOCK + 1, d, problem.spec.dtype)[-1]
        if problem._W0 is not None and not np.array_equal(problem._W0[r], row):
            return False
    probe = np.unique(np.linspace(lo, hi - 1, num=min(hi - lo, 64)).astype(np.int64))
    return problem._a is None or np.array_equal(problem._a[probe], signs(seed, probe))


# -- the shard: an actor on a worker ----------------------------------------------------------


class _Shard:
    """One shard: a trainer of ``impl`` over the neurons ``lo .. hi-1``, on its worker."""

    def __init__(self, impl, X, y, spec, b, source, data, lo, hi, step_size, options, W0=None, a=None):
        from .provenance import set_threads

        # One thread, set here in the actor's own thread: numba's thread count is per
        # thread, and the environment alone left the block pool at the machine's cores
        # (measured: a single worker ran its build at 200% CPU).
        set_threads(1)
        parent = Problem(X, y, b=b, spec=spec, source=source, data=data)
        self.problem = ShardProblem(parent, lo, hi, W0=W0, a=a)
        self.lo = int(lo)
        self.scale = math.sqrt((hi - lo) / spec.m)
        t0 = time.perf_counter()
        self.trainer = registry.create(impl, self.problem, step_size=step_size, **options)
        self.build_seconds = time.perf_counter() - t0

    def state(self):
        """Partial predictions (scaled to the whole network) and counts (int64)."""
        f = np.asarray(self.trainer._predictions(), dtype=np.float64) * self.scale
        C = np.rint(np.asarray(self.trainer._counts())).astype(np.int64)
        return f, C

    def info(self):
        from .generator import default_workers
        from .provenance import provenance

        return {"pid": os.getpid(), "threads": default_workers(), "build_seconds": self.build_seconds, "neurons": self.problem.m,
                "work": dict(self.trainer.build_work) if hasattr(self.trainer, "build_work") else {},
                "provenance": provenance()}

    def update(self, g):
        t0 = time.perf_counter()
        upd = self.trainer._update(np.asarray(g, dtype=np.float64) * self.scale)
        self.trainer._sync()
        f, C = self.state()
        return upd.flips, upd.moved, dict(upd.work), f, C, time.perf_counter() - t0

    def ping(self):
        """Nothing: the round trip of one call (for measuring the transport's floor)."""
        return None

    def active_sets(self):
        ptr, idx = self.trainer.active_sets()
        return ptr, idx + self.lo

    def weights(self):
        return self.trainer.weights()

    def weights_at(self, idx):
        tr = self.trainer
        return tr.weights_at(idx) if hasattr(tr, "weights_at") else tr.weights()[idx]


# -- the cluster ------------------------------------------------------------------------------


class Cluster:
    """A Dask client and, for a local cluster, the cluster it started: ``workers``
    single-threaded process workers on this machine, or the workers of the scheduler at
    ``scheduler``. Checks that every worker runs the driver's versions. Use as a context
    manager, or call :meth:`close` (everything it started is stopped)."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None, *, timeout=DEFAULT_TIMEOUT,
                 connect_timeout=CONNECT_TIMEOUT):
        _need_dask()
        from distributed import Client, LocalCluster

        if workers is None and not scheduler:
            raise ConfigError("give a number of local workers (--workers N) or a scheduler address (--scheduler).")
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))
                                    or workers < 1):
            raise ConfigError(f"--workers must be a positive integer, got {workers!r}.")
        self.timeout = float(timeout)
        self._cluster = None
        self.client = None
        try:
            if scheduler:
                try:
                    self.client = Client(scheduler, timeout=f"{connect_timeout}s")
                except (OSError, TimeoutError) as exc:
                    raise ConfigError(
                        f"cannot reach the Dask scheduler at {scheduler!r} within {connect_timeout:g} s "
                        f"({type(exc).__name__}); "
                        "start one with `dask scheduler` (and workers with `dask worker ADDRESS --nthreads 1`), "
                        "or use local workers with --workers N."
                    ) from None
                if workers is not None:
                    try:
                        self.client.wait_for_workers(int(workers), timeout=connect_timeout)
                    except TimeoutError:
                        raise ConfigError(f"the scheduler at {scheduler!r} has fewer than {workers} workers after "
                                          f"{connect_timeout:g} s; start more, or ask for fewer (--workers).") from None
            else:
                self._cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                             dashboard_address=":0", silence_logs=logging.ERROR, env=WORKER_ENV)
                self.client = Client(self._cluster)
            if not self.workers:
                raise ConfigError(f"the scheduler at {scheduler!r} has no workers; start some with "
                                  f"`dask worker {scheduler} --nthreads 1`.")
            self._check_versions()
        except BaseException:
            self.close()
            raise

    @property
    def workers(self) -> list[str]:
        """The addresses of the cluster's workers now (a restarted worker has a new one)."""
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"]) if self.client is not None else []

    def _check_versions(self):
        from .provenance import provenance

        try:
            self.client.get_versions(check=True)
        except ValueError as exc:
            raise ConfigError(f"the Dask workers do not run the client's versions: {str(exc).splitlines()[0]} "
                              "(install the same environment on every machine).") from None
        mine = provenance()
        keys = ("sublin_bench", "commit", "dirty", "numpy", "numba", "generator")
        theirs = self.client.run(provenance)
        for addr, prov in sorted(theirs.items()):
            diff = [f"{k}: {prov.get(k)} here, {mine.get(k)} on the client" for k in keys if prov.get(k) != mine.get(k)]
            if diff:
                raise ConfigError(f"worker {addr} runs another version ({'; '.join(diff)}); install the client's "
                                  "checkout on every worker.")
        self.provenance = mine

    def describe(self) -> dict:
        """What the cluster is, for records: workers, threads each, hosts."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        return {"workers": len(info), "threads": sorted({w.get("nthreads") for w in info.values()}),
                "hosts": sorted({w.get("host") for w in info.values()}),
                "local": self._cluster is not None}

    def create(self, name, problem, *, step_size=1.0, solver="exact", shards=None, bounds=None, **options):
        """A :class:`ShardedTrainer` of ``name`` on ``problem`` over this cluster."""
        return ShardedTrainer(problem, name, cluster=self, step_size=step_size, solver=solver, shards=shards,
                              bounds=bounds, **options)

    def close(self):
        with contextlib.suppress(Exception):
            if self.client is not None:
                self.client.close()
        with contextlib.suppress(Exception):
            if self._cluster is not None:
                self._cluster.close()
        self.client = self._cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_CURRENT: contextvars.ContextVar = contextvars.ContextVar("sublin_bench_cluster", default=None)


def current() -> Cluster | None:
    """The cluster of the innermost :func:`sharded` block, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def sharded(workers: int | None = None, scheduler: str | None = None, *, timeout=DEFAULT_TIMEOUT):
    """Within the block, ``registry.create`` builds every trainer sharded over the cluster
    (``workers`` local workers, or the scheduler at ``scheduler``); the cluster is closed on
    the way out."""
    cluster = Cluster(workers, scheduler, timeout=timeout)
    token = _CURRENT.set(cluster)
    try:
        yield cluster
    finally:
        _CURRENT.reset(token)
        cluster.close()


def _summed(counters) -> dict:
    """The shards' work counters added key by key. ``Counter.update``, not ``+``: addition
    drops counters that sum to zero, and a step on which no shard did any work must still
    report ``work: 0``."""
    total: Counter = Counter()
    for c in counters:
        total.update(c)
    return dict(total)


# -- the driver's trainer ---------------------------------------------------------------------


class ShardedTrainer(Trainer):
    """``impl`` over ``shards`` neuron ranges, one per worker (see the module docstring).

    Same interface and :class:`~sublin_bench.interface.StepInfo` as any trainer; the step's
    solve runs here, on the reduced Gram. ``shards`` defaults to the cluster's workers; the
    shards go to the workers in turn. ``bounds`` (``[0, ..., m]``) sets uneven ranges.
    """

    name = "sharded"

    def __init__(self, problem, impl, *, cluster: Cluster, step_size=1.0, solver="exact", shards=None, bounds=None,
                 timeout=None, **options):
        super().__init__(problem, step_size=step_size)
        cls = registry.get(impl)
        self.name = impl  # what reports call it; ``describe`` says it is sharded
        self.impl = impl
        self.exact = cls.exact
        self.sublinear = cls.sublinear
        self.holds_problem_weights = False
        self.cluster = cluster
        self.timeout = float(cluster.timeout if timeout is None else timeout)
        self.set_solver(solver)
        if problem.sample is not None:
            raise ConfigError("a sampled problem cannot be sharded (its candidates are drawn jointly over all m); "
                              "use --init plain with --workers.")
        workers = cluster.workers
        self.bounds = shard_bounds(problem.m, len(workers) if shards is None else shards, bounds)
        self.shards = len(self.bounds)
        self.workers = [workers[s % len(workers)] for s in range(self.shards)]
        self.describe = f"{impl} sharded over {self.shards} ranges on {len(set(self.workers))} Dask worker(s)"
        warm = getattr(cls, "warm_up", None)
        if warm is not None:  # compile or load numba's cache here first: workers then only read it
            warm(problem.spec.dtype)
        spec = problem.spec.replace(init="plain")  # what the workers regenerate: every row from the seed
        client = cluster.client
        self._actors = []
        t0 = time.perf_counter()
        futures = []
        for (lo, hi), w in zip(self.bounds, self.workers):
            arrays = {}
            if not _regenerable(problem, lo, hi):  # rows the seed does not give: sent, as they must be
                arrays = {"W0": np.array(problem.W0[lo:hi]), "a": np.array(problem.a[lo:hi])}
            futures.append(client.submit(_Shard, impl, problem.X, problem.y, spec, problem.b, problem.source,
                                         problem.data, lo, hi, self.step_size, options, actor=True, workers=[w],
                                         allow_other_workers=False, pure=False, **arrays))
        try:
            self._actors = self._wait(futures, "the build")
            infos = self._wait([a.info() for a in self._actors], "the build")
            self._set_state(self._wait([a.state() for a in self._actors], "the build"))
        except BaseException:
            self.close()
            raise
        self.build_seconds = time.perf_counter() - t0
        self.shard_build_seconds = [i["build_seconds"] for i in infos]
        self.build_work = _summed(i["work"] for i in infos)
        self._last_remote = 0.0

    def set_solver(self, solver="exact", **options):
        super().set_solver(solver, **options)
        if not self.solver.needs_gram:
            raise ConfigError(f"a sharded run solves exactly; solver {self.solver.name!r} needs J v products "
                              "across shards, which are not sharded yet. Use --solver exact with --workers.")

    # -- waiting on the shards, with a timeout and a clear error ---------------------------

    def _wait(self, futures, what):
        from distributed import TimeoutError as DaskTimeout

        deadline = time.monotonic() + self.timeout
        out = []
        for s, fut in enumerate(futures):
            missing = 0
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._lost(s, what, f"no answer within {self.timeout:g} s")
                try:
                    out.append(fut.result(timeout=min(left, 0.5)))
                    break
                except (TimeoutError, DaskTimeout):
                    alive = self._alive()  # None: the scheduler did not answer this time, which proves nothing
                    missing = missing + 1 if alive is not None and self.workers[s] not in alive else 0
                    if missing >= 2:  # gone from the scheduler's list twice in a row, half a second apart
                        raise self._lost(s, what, "its worker left the cluster") from None
                except SublinError:
                    raise
                except Exception as exc:  # the worker died, or the shard raised
                    raise self._lost(s, what, f"{type(exc).__name__}: {exc}") from None
        return out

    def _alive(self) -> set | None:
        """The scheduler's workers now, or None if it could not be asked."""
        try:
            return set(self.cluster.client.scheduler_info(n_workers=-1)["workers"])
        except Exception:
            return None

    def _lost(self, s, what, why) -> ShardLostError:
        self.close()
        lo, hi = self.bounds[s]
        return ShardLostError(
            f"shard {s} (neurons {lo}..{hi - 1}) on worker {self.workers[s]} failed during {what}: {why}. "
            "Its state is gone and the run stops here; start it again (a new run rebuilds every shard from the seed)."
        )

    def ping_seconds(self, rounds: int = 50) -> float:
        """Median wall time of one call to every shard at once that does nothing: the
        floor of the per-step overhead that Dask's actor calls set."""
        times = []
        for _ in range(int(rounds)):
            t0 = time.perf_counter()
            self._wait([a.ping() for a in self._actors], "ping")
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    def close(self):
        """Release the shards (their workers free the memory)."""
        actors, self._actors = getattr(self, "_actors", []), []
        for a in actors:
            with contextlib.suppress(Exception):
                a._future.release()
        del actors

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()

    # -- the Trainer interface --------------------------------------------------------------

    def _set_state(self, states):
        self._f = np.sum([f for f, _ in states], axis=0)
        self._C = np.sum([C for _, C in states], axis=0)

    def _predictions(self):
        return self._f

    def _counts(self):
        return self._C

    def _fired_sizes(self):
        return np.diagonal(self._C)

    def _update(self, g):
        if not self._actors:
            raise ShardLostError("this sharded trainer was closed (a shard failed); start the run again.")
        res = self._wait([a.update(g) for a in self._actors], f"step {self.t}")
        self._set_state([(r[3], r[4]) for r in res])
        work = _summed(r[2] for r in res)
        self._last_remote = max(r[5] for r in res)
        return UpdateResult(flips=sum(r[0] for r in res), moved=sum(r[1] for r in res), work=work)

    def active_sets(self):
        parts = self._wait([a.active_sets() for a in self._actors], "active_sets")
        n = self.problem.n
        sizes = np.sum([np.diff(p) for p, _ in parts], axis=0) if parts else np.zeros(n, dtype=np.int64)
        ptr = indptr_from_counts(sizes)
        idx = np.empty(int(ptr[-1]), dtype=np.int64)
        at = ptr[:-1].copy()
        for p, ix in parts:  # shards in neuron order: each row stays sorted
            rows = rows_of(p)
            pos = at[rows] + (np.arange(ix.size) - p[rows])
            idx[pos] = ix
            at += np.diff(p)
        return ptr, idx

    def weights(self):
        check_fits(self.problem.spec.memory_estimate(), "the weights of the sharded run in memory")
        return np.concatenate(self._wait([a.weights() for a in self._actors], "weights"))

    def weights_at(self, idx) -> np.ndarray:
        """Rows ``idx`` (any neuron indices) of ``W_t``, each asked of its shard."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.problem.m):
            raise ConfigError(f"neuron indices must lie in 0..{self.problem.m - 1}.")
        out = np.empty((idx.size, self.problem.d), dtype=self.problem.dtype)
        starts = np.array([lo for lo, _ in self.bounds])
        owner = np.searchsorted(starts, idx, side="right") - 1
        asks = [(s, np.flatnonzero(owner == s)) for s in range(self.shards)]
        asks = [(s, pos) for s, pos in asks if pos.size]
        rows = self._wait([self._actors[s].weights_at(idx[pos] - self.bounds[s][0]) for s, pos in asks], "weights_at")
        for (s, pos), r in zip(asks, rows):
            out[pos] = r
        return out

    @classmethod
    def memory_estimate(cls, spec):
        return spec.n * spec.n * 8 * 4
