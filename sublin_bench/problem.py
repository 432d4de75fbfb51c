"""Problem specification and the deterministic problem generator.

A problem is everything a training run starts from: inputs ``X`` on the unit sphere,
labels ``y``, the initial first layer ``W0``, the fixed second layer ``a`` and the
threshold ``b`` of the shifted ReLU (README.md, "The mathematics in a few lines").

Randomness comes from :class:`numpy.random.SeedSequence` streams keyed by purpose, so
``X`` and ``y`` depend only on ``(seed, n, d)`` and ``W0``, ``a`` only on
``(seed, m, d)``: the neurons of a width-``m`` problem are the first ``m`` neurons of
every wider problem with the same seed. PCG64 and NumPy's normal sampler are
platform independent, so the raw draws are the same bit for bit on every machine; the
row normalisation of ``X`` can differ by a few ulps between BLAS/libm builds.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .generator import (
    W_BLOCK,
    block_count,
    candidate_threshold,
    expected_candidates,
    map_blocks,
    plain_block,
    rejected_rows,
    sample_candidates,
    sampling_rate,
    signs,
)
from .memory import check_fits

__all__ = ["ProblemSpec", "Problem", "make_problem", "threshold_for", "DTYPES", "GENERATOR_VERSION"]

#: Version of the problem generator: bumped whenever the same spec would give other
#: numbers, and recorded with every result (results of two versions are never pooled).
GENERATOR_VERSION = 2

#: Working precisions an implementation must support.
DTYPES = ("float64", "float32")
#: How W0 may be drawn (ProblemSpec.init).
INITS = ("plain", "sampled")

# One SeedSequence spawn key per random quantity, so adding a quantity later never
# changes the existing ones.
# (2 and up are the neuron streams of sublin_bench.generator.)
_STREAM_X, _STREAM_Y = 0, 1


def threshold_for(m: int, alpha: float) -> float:
    """The default threshold ``b = sqrt(2 alpha ln m)``.

    With it each neuron fires on an input with probability ``Q(b) <= m**-alpha``, so about
    ``m Q(b) <= m**(1 - alpha)`` neurons fire per input.

    Examples
    --------
    >>> round(threshold_for(2**20, 0.24), 4)
    2.5796
    """
    return math.sqrt(2.0 * alpha * math.log(m))


def _no_text(name: str, value, cast: str = "float") -> None:
    # Every numeric field refuses text alike (float("0.24") would take it, int("8") not):
    # a spec is built from numbers; the CLI converts its strings itself.
    if isinstance(value, (str, bytes)):
        raise ConfigError(f"{name} must be a number, got the string {value!r}; convert it first (e.g. {cast}({value!r})).")


def _as_int(name: str, value, minimum: int) -> int:
    _no_text(name, value, "int")
    if isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name} must be an integer, got {value!r}.")
    if not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        else:
            raise ConfigError(f"{name} must be an integer, got {value!r}.")
    value = int(value)
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}.")
    return value


def _as_dtype(value) -> str:
    try:
        name = np.dtype(value).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {value!r}.")
    return name


@dataclass(frozen=True)
class ProblemSpec:
    """Sizes and parameters of one problem.

    Parameters
    ----------
    m : int
        Width (number of hidden neurons), at least 1.
    n : int
        Number of inputs, at least 1.
    d : int
        Input dimension, at least 1.
    alpha : float
        Sparsity exponent in ``[0, 1)``; ``b = sqrt(2 alpha ln m)`` unless ``b`` is given.
        ``alpha = 0`` gives ``b = 0``, the plain ReLU, as a control.
    seed : int
        Seed of every random draw, ``>= 0``.
    b : float or None
        Explicit threshold ``>= 0``; overrides the one derived from ``alpha``.
    dtype : {"float64", "float32"}
        Working precision of ``X`` and the weights. Predictions, Gram matrices and the
        least-squares solve are always float64.
    data : str
        Where ``X`` and ``y`` come from: ``"sphere"`` (generated), a data set bundled with
        scikit-learn (``"digits"``, ``"breast_cancer"``, ``"wine"``, ``"diabetes"``) or a
        ``.npy``/``.npz``/``.csv`` file, preprocessed as :mod:`sublin_bench.data` says;
        ``n`` rows are drawn from it (seeded) and ``d`` must be its number of features.
    init : {"plain", "sampled"}
        How ``W0`` is drawn: ``plain`` generates every row (block by block, see
        :mod:`sublin_bench.generator`); ``sampled`` draws the band candidates directly
        and the other rows only on demand. Both are i.i.d. ``N(0, I_d)`` in distribution;
        with one seed they are two different draws.

    Examples
    --------
    >>> spec = ProblemSpec(m=2**10, n=8, d=4, alpha=0.24)
    >>> round(spec.threshold, 4)
    1.824
    """

    m: int
    n: int
    d: int
    alpha: float
    seed: int = 0
    b: float | None = None
    dtype: str = "float64"
    init: str = "plain"
    data: str = "sphere"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "m", _as_int("m", self.m, 1))
        set_(self, "n", _as_int("n", self.n, 1))
        set_(self, "d", _as_int("d", self.d, 1))
        set_(self, "seed", _as_int("seed", self.seed, 0))
        _no_text("alpha", self.alpha)
        if isinstance(self.alpha, (bool, np.bool_)):
            raise ConfigError(f"alpha must be a number in [0, 1), got {self.alpha!r}.")
        try:
            alpha = float(self.alpha)
        except (TypeError, ValueError):
            raise ConfigError(f"alpha must be a number in [0, 1), got {self.alpha!r}.") from None
        if not (0.0 <= alpha < 1.0):
            raise ConfigError(
                f"alpha must lie in [0, 1), got {self.alpha!r}. alpha = 0 is plain ReLU; "
                "the paper's headline setting is alpha = 0.24."
            )
        set_(self, "alpha", alpha)
        if self.b is not None:
            _no_text("b", self.b)
            try:
                b = float(self.b)
            except (TypeError, ValueError):
                raise ConfigError(f"b must be a number >= 0, got {self.b!r}.") from None
            if not math.isfinite(b) or b < 0:
                raise ConfigError(
                    f"b must be a finite number >= 0, got {self.b!r}. "
                    "Leave b unset to derive it from alpha."
                )
            set_(self, "b", b)
        set_(self, "dtype", _as_dtype(self.dtype))
        if not isinstance(self.data, str) or not self.data:
            raise ConfigError(f"data must be a source name or a file path, got {self.data!r}.")
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(map(repr, INITS))}, got {self.init!r}.")

    @property
    def threshold(self) -> float:
        """The threshold actually used: ``b`` if given, else ``sqrt(2 alpha ln m)``."""
        return self.b if self.b is not None else threshold_for(self.m, self.alpha)

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    def memory_estimate(self) -> int:
        """Bytes of ``W0`` and ``a`` held in memory (``m d`` numbers), what an
        implementation that reads ``problem.W0`` needs; plus the inputs."""
        return self.m * self.d * self.itemsize + self.m + self.inputs_memory_estimate()

    def inputs_memory_estimate(self) -> int:
        """Bytes of ``X`` and ``y`` (all that a problem holds until ``W0`` is asked for)."""
        return self.n * (self.d * self.itemsize + 8)

    def replace(self, **changes) -> ProblemSpec:
        """A copy with some fields changed (validated again)."""
        fields = {k: getattr(self, k) for k in ("m", "n", "d", "alpha", "seed", "b", "dtype", "init", "data")}
        fields.update(changes)
        return ProblemSpec(**fields)

    def describe(self) -> str:
        b = f"{self.threshold:.4g}" + ("" if self.b is not None else " (derived)")
        return (
            f"m={self.m}, n={self.n}, d={self.d}, alpha={self.alpha:g}, b={b}, "
            f"seed={self.seed}, dtype={self.dtype}" + (f", init={self.init}" if self.init != "plain" else "")
            + (f", data={self.data}" if self.data != "sphere" else "")
        )


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream,))))


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


class Problem:
    """An immutable training problem. Build with :func:`make_problem` or
    :meth:`Problem.from_arrays` (or directly from arrays, as tests do).

    The first layer need not be in memory: a generated problem regenerates any block of
    ``W0`` from its seed (:mod:`sublin_bench.generator`), so an implementation that
    streams over the blocks (:meth:`w0_rows`, :meth:`map_blocks`) or needs only the
    candidates (:attr:`sample`) never holds ``m d`` numbers. ``problem.W0`` still gives
    the whole array where it fits (checked against the available memory first, then kept).

    Attributes
    ----------
    X : ndarray (n, d)
        Inputs, rows of unit norm, in ``spec.dtype``.
    y : ndarray (n,)
        Labels, float64.
    W0 : ndarray (m, d)
        Initial first layer, in ``spec.dtype`` (generated on first access).
    a : ndarray (m,) int8
        Second layer, entries in {-1, +1} (computed on first access; :meth:`a_at` for a
        subset).
    b : float
        Threshold of the shifted ReLU.
    spec : ProblemSpec
    source : str
        ``"generated"`` or ``"arrays"`` (user data via :meth:`from_arrays`).
    init : str
        ``"plain"`` or ``"sampled"``: how ``W0`` was drawn (``spec.init``, or ``plain``
        where sampling was not possible; :attr:`note` says why).
    """

    __slots__ = ("X", "y", "b", "spec", "source", "init", "note", "data", "_W0", "_a", "_sample")

    def __init__(self, X, y, W0=None, a=None, b=None, spec=None, source="generated", *, sample=None, note="",
                 data=None):
        if not isinstance(spec, ProblemSpec):
            raise ConfigError(f"Problem needs a ProblemSpec, got {type(spec).__name__}.")
        if (W0 is None) != (a is None):
            raise ConfigError("give both W0 and a, or neither (then they are generated from the seed).")
        values = dict(X=X, y=y, spec=spec, source=source, b=float(spec.threshold if b is None else b),
                      _W0=W0, _a=a, _sample=sample, init="sampled" if sample is not None else "plain", note=note,
                      data=data if data is not None else {"source": spec.data if source == "generated" else source})
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"a Problem is immutable ({name!r} cannot be set)")

    def __repr__(self) -> str:
        return f"<Problem {self.spec.describe()} ({self.init} init, {self.source})>"

    @property
    def m(self) -> int:
        return self.spec.m

    @property
    def n(self) -> int:
        return self.spec.n

    @property
    def d(self) -> int:
        return self.spec.d

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.spec.dtype)

    @property
    def sample(self):
        """The candidates of a sampled problem (:class:`~sublin_bench.generator.Sample`:
        ``idx``, ``W``, ``a``, ``t0``), or None for a plain one."""
        return self._sample

    @property
    def W0(self) -> np.ndarray:
        if self._W0 is None:
            check_fits(self.spec.memory_estimate(), f"W0 of {self.spec.describe()} in memory")
            W = np.empty((self.m, self.d), dtype=self.spec.dtype)
            map_blocks(lambda k, start, stop: self._fill_block(k, W[start:stop]), self.m)
            object.__setattr__(self, "_W0", _readonly(W))
        return self._W0

    def _fill_block(self, k: int, out: np.ndarray) -> None:
        """Write block ``k`` of ``W0`` into ``out`` (generated straight into it for a plain
        problem); what :attr:`W0` runs on every block."""
        if self._sample is None:
            plain_block(self.spec.seed, k, out.shape[0], self.d, self.spec.dtype, out=out)
        else:
            out[...] = self.w0_block(k)

    @property
    def a(self) -> np.ndarray:
        if self._a is None:
            object.__setattr__(self, "_a", _readonly(self.a_at(np.arange(self.m, dtype=np.int64))))
        return self._a

    def a_at(self, idx) -> np.ndarray:
        """``a_r`` (int8) for the neuron indices ``idx``, in ``O(len(idx))``."""
        idx = np.asarray(idx, dtype=np.int64)
        if self._a is not None:
            return self._a[idx]
        return signs(self.spec.seed, idx)

    def w0_block(self, k: int, *, copy: bool = True) -> np.ndarray:
        """Block ``k`` of ``W0``: rows ``k W_BLOCK .. min(m, (k+1) W_BLOCK) - 1`` in
        ``spec.dtype``, regenerated from the seed, or cut from ``W0`` where it is in memory
        (a read-only view of it with ``copy=False``; otherwise always a fresh array)."""
        start, stop = k * W_BLOCK, min(self.m, (k + 1) * W_BLOCK)
        if not (0 <= start < stop):
            raise ConfigError(f"block {k} is outside this problem's {block_count(self.m)} blocks.")
        if self._W0 is not None:
            return np.array(self._W0[start:stop]) if copy else self._W0[start:stop]
        if self._sample is None:
            return plain_block(self.spec.seed, k, stop - start, self.d, self.spec.dtype)
        s = self._sample
        lo, hi = np.searchsorted(s.idx, [start, stop])
        rows = np.empty((stop - start, self.d))
        mask = np.ones(stop - start, dtype=bool)
        mask[s.idx[lo:hi] - start] = False
        rows[mask] = rejected_rows(self.spec.seed, k, int(mask.sum()), self.X, s.t0)
        rows[~mask] = s.W[lo:hi]
        return rows if self.spec.dtype == "float64" else rows.astype(self.spec.dtype)

    def w0_at(self, idx) -> np.ndarray:
        """Rows ``idx`` (any neuron indices) of ``W0``, regenerating only the blocks they
        lie in."""
        idx = np.asarray(idx, dtype=np.int64)
        if self._W0 is not None:
            return np.array(self._W0[idx])
        out = np.empty((idx.size, self.d), dtype=self.spec.dtype)
        todo = np.arange(idx.size)
        s = self._sample
        if s is not None:  # candidates come from the sample, no block needed
            hit, pos = _find(s.idx, idx)
            out[hit] = s.W[pos[hit]]
            todo = np.flatnonzero(~hit)
        blocks = idx[todo] // W_BLOCK
        for k in np.unique(blocks):
            sel = todo[blocks == k]
            out[sel] = self.w0_block(int(k))[idx[sel] - int(k) * W_BLOCK]
        return out

    def w0_with(self, idx, rows) -> np.ndarray:
        """``W0`` whole (a fresh array, memory-checked) with the rows ``idx`` replaced by
        ``rows``: the current weights of an implementation that stores only the neurons
        ``idx`` (the others never moved)."""
        m, d = self.m, self.d
        check_fits(m * d * self.dtype.itemsize, f"the weights of {self.spec.describe()} in memory "
                   "(weights_at gives a subset)")
        out = np.empty((m, d), dtype=self.dtype)

        def fill(k, start, stop):
            out[start:stop] = self.w0_block(k, copy=False)

        map_blocks(fill, m)
        out[np.asarray(idx, dtype=np.int64)] = rows
        return out

    def w0_at_with(self, query, idx, rows) -> np.ndarray:
        """Rows ``query`` of ``W0`` with the rows ``idx`` (any order) replaced by ``rows``:
        :meth:`w0_with` for a subset, regenerating only the blocks the other rows lie in."""
        query = np.asarray(query, dtype=np.int64)
        if query.size and (query.min() < 0 or query.max() >= self.m):
            raise ConfigError(f"neuron indices must lie in 0..{self.m - 1}.")
        out = self.w0_at(query)
        idx = np.asarray(idx, dtype=np.int64)
        order = np.argsort(idx, kind="stable")
        hit, pos = _find(idx[order], query)
        out[hit] = rows[order[pos[hit]]]
        return out

    def w0_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start .. stop - 1`` of ``W0`` (regenerating the blocks they lie in)."""
        start, stop = int(start), int(stop)
        if not (0 <= start <= stop <= self.m):
            raise ConfigError(f"rows {start}..{stop} are outside 0..{self.m}.")
        return self.w0_at(np.arange(start, stop, dtype=np.int64))

    def map_blocks(self, fn, *, workers=None, progress=None, copy=True):
        """``[fn(start, W_block, a_block) for every block]`` in order, over the
        generator's blocks, on ``workers`` threads (default: the cores numba sees).
        ``copy=False``: ``fn`` only reads the block (a view where ``W0`` is in memory)."""

        def run(k, start, stop):
            return fn(start, self.w0_block(k, copy=copy), self.a_at(np.arange(start, stop, dtype=np.int64)))

        return map_blocks(run, self.m, workers=workers, progress=progress)

    def narrowed(self, spec: ProblemSpec) -> Problem:
        """The problem of ``spec`` cut from this wider one, without drawing anything again.

        The neurons of a width-m plain problem are the first m of every wider one with the
        same seed, and the inputs and labels do not depend on m or alpha, so this equals
        ``make_problem(spec)`` (or ``from_arrays`` on the same data) at the cost of a view
        of whatever this problem holds. ``spec`` may change ``m`` (down to 1), ``alpha``
        and ``b``; not the seed, ``n``, ``d``, the dtype or the init. A sampled problem
        cannot be narrowed (its candidates depend on m): make it anew.
        """
        if not isinstance(spec, ProblemSpec):
            raise ConfigError(f"narrowed expects a ProblemSpec, got {type(spec).__name__}.")
        mine = self.spec
        for name in ("seed", "n", "d", "dtype", "init", "data"):
            if getattr(spec, name) != getattr(mine, name):
                raise ConfigError(
                    f"narrowed cannot change {name} ({getattr(mine, name)!r} -> {getattr(spec, name)!r}); "
                    "build the problem with make_problem instead."
                )
        if self._sample is not None:
            raise ConfigError("a sampled problem cannot be narrowed (its candidates depend on m); use make_problem.")
        if spec.m > mine.m:
            raise ConfigError(f"narrowed can only cut neurons: m={spec.m} is wider than this problem's m={mine.m}.")
        W0 = None if self._W0 is None else self._W0[: spec.m]
        a = None if W0 is None else (self._a[: spec.m] if self._a is not None else self.a_at(np.arange(spec.m)))
        return Problem(X=self.X, y=self.y, W0=W0, a=a, b=spec.threshold, spec=spec, source=self.source,
                       data=self.data)

    @classmethod
    def from_arrays(
        cls,
        X,
        y,
        *,
        m: int,
        alpha: float,
        seed: int = 0,
        b: float | None = None,
        dtype: str = "float64",
        init: str = "plain",
    ) -> Problem:
        """A problem on the user's own data.

        Rows of ``X`` are normalised to unit length (the theory assumes ``||x_i|| = 1``);
        the neurons are drawn from ``seed`` exactly as in :func:`make_problem` (and, like
        there, generated only when asked for).

        Parameters
        ----------
        X : array_like (n, d)
            Inputs; finite, no zero rows.
        y : array_like (n,)
            Labels; finite.
        m, alpha, seed, b, dtype
            As in :class:`ProblemSpec`.

        Raises
        ------
        ConfigError
            For a shape mismatch, a non-finite entry or a zero row (the offending rows are
            named).

        Examples
        --------
        >>> p = Problem.from_arrays([[3.0, 4.0], [0.0, 2.0]], [1.0, -1.0], m=16, alpha=0.2)
        >>> p.X.tolist()
        [[0.6, 0.8], [0.0, 1.0]]
        """
        try:
            Xa = np.array(X, dtype=np.float64)
            ya = np.array(y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"X and y must be numeric arrays ({exc}).") from None
        if Xa.ndim != 2:
            raise ConfigError(
                f"X must be a 2-D array (n, d), got shape {Xa.shape}. "
                "Reshape a single input to (1, d)."
            )
        if ya.ndim != 1:
            raise ConfigError(f"y must be a 1-D array (n,), got shape {ya.shape}.")
        if Xa.shape[0] != ya.shape[0]:
            raise ConfigError(
                f"X has {Xa.shape[0]} rows but y has {ya.shape[0]} labels; they must match."
            )
        if Xa.shape[0] == 0 or Xa.shape[1] == 0:
            raise ConfigError(f"X must have at least one row and one column, got shape {Xa.shape}.")
        from .data import check_finite, digest

        check_finite(Xa, ya)
        spec = ProblemSpec(m=m, n=Xa.shape[0], d=Xa.shape[1], alpha=alpha, seed=seed, b=b, dtype=dtype, init=init)
        Xn = _readonly(unit_rows(Xa).astype(spec.dtype))
        return _with_neurons(spec, Xn, _readonly(ya), source="arrays",
                             data={"source": "arrays", "sha256": digest(Xa, ya)})


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows of ``X`` (finite, float64) scaled to unit Euclidean norm, without overflow or
    underflow: each row is first divided by its largest magnitude, so rows with entries
    near 1e308 or near the smallest subnormal normalise as well as ordinary ones.

    Raises ConfigError for all-zero rows (they have no direction).

    Examples
    --------
    >>> unit_rows(np.array([[1e308, 1e308], [3e-320, 4e-320]])).round(6).tolist()
    [[0.707107, 0.707107], [0.6, 0.8]]
    """
    scale = np.max(np.abs(X), axis=1)
    bad = np.flatnonzero(scale == 0)
    if bad.size:
        raise ConfigError(
            f"X has all-zero rows {_list(bad)}; they cannot be normalised to the unit sphere. "
            "Drop them or add a bias feature."
        )
    Xs = X / scale[:, None]
    return Xs / np.linalg.norm(Xs, axis=1, keepdims=True)


def _find(keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``query``, whether it is in the sorted ``keys``, and where (``pos`` is
    only meaningful where found)."""
    if keys.size == 0 or query.size == 0:
        return np.zeros(query.size, dtype=bool), np.zeros(query.size, dtype=np.int64)
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return keys[pos] == query, pos


def _list(idx: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return shown + (f", ... ({idx.size} in all)" if idx.size > limit else "")


def make_problem(spec: ProblemSpec) -> Problem:
    """Generate the problem of ``spec``, deterministically.

    ``x_i`` uniform on the unit sphere, ``y_i ~ N(0, 1)``, ``W0`` i.i.d. ``N(0, 1)``,
    ``a_r`` uniform on {-1, +1}, ``b = sqrt(2 alpha ln m)`` unless given.

    Notes
    -----
    Plain init: ``O(n d)`` here; ``W0`` is generated block by block when it is read
    (``problem.W0`` checks the memory first, then costs ``O(m d)``). Sampled init
    (``spec.init == "sampled"``): draws the candidates now, in ``O(m n Q(t0) n d)``
    (:func:`sublin_bench.generator.sample_candidates`); where ``n Q(t0) > 1`` the
    construction does not apply, and the problem falls back to the plain init
    (``problem.init == "plain"``, ``problem.note`` says why).

    Examples
    --------
    >>> p = make_problem(ProblemSpec(m=64, n=4, d=3, alpha=0.24, seed=1))
    >>> p.X.shape, p.W0.shape, bool(abs(np.linalg.norm(p.X[0]) - 1) < 1e-12)
    ((4, 3), (64, 3), True)
    """
    if not isinstance(spec, ProblemSpec):
        raise ConfigError(f"make_problem expects a ProblemSpec, got {type(spec).__name__}.")
    if spec.data == "sphere":
        G = _rng(spec.seed, _STREAM_X).standard_normal((spec.n, spec.d))
        X = _readonly((G / np.linalg.norm(G, axis=1, keepdims=True)).astype(spec.dtype))
        y = _readonly(_rng(spec.seed, _STREAM_Y).standard_normal(spec.n))
        return _with_neurons(spec, X, y, source="generated", data={"source": "sphere"})
    from .data import load

    ds = load(spec.data, n=spec.n, seed=spec.seed)
    if ds.X.shape[1] != spec.d:
        raise ConfigError(
            f"data {spec.data!r} has d = {ds.X.shape[1]} features after preprocessing, but d = {spec.d} was asked "
            f"for; use d = {ds.X.shape[1]} (the CLI sets it when --d is not given)."
        )
    return _with_neurons(spec, _readonly(ds.X.astype(spec.dtype)), _readonly(ds.y), source="generated", data=ds.info)


def _with_neurons(spec: ProblemSpec, X, y, *, source: str, data=None) -> Problem:
    if spec.init == "plain":
        return Problem(X=X, y=y, b=spec.threshold, spec=spec, source=source, data=data)
    t0 = candidate_threshold(spec.threshold)
    q = sampling_rate(spec.n, t0)
    if q > 1:
        note = (f"sampled init needs n Q(t0) <= 1 but n Q(b - D0) = {q:.3g} at b = {spec.threshold:.3g}: "
                "nearly every neuron is a candidate, so the plain init is used")
        return Problem(X=X, y=y, b=spec.threshold, spec=spec, source=source, note=note, data=data)
    est = expected_candidates(spec.m, spec.n, t0) * (spec.d * 8 * 3 + 16)
    check_fits(int(est), f"the sampled candidates of {spec.describe()}")
    sample = sample_candidates(spec.seed, spec.m, X, t0)
    if spec.dtype != "float64":
        sample.W = sample.W.astype(spec.dtype)
    return Problem(X=X, y=y, b=spec.threshold, spec=spec, source=source, sample=sample, data=data)
