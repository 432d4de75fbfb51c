"""Where a problem's inputs come from: the sphere, a data set bundled with scikit-learn, or
a user's file, and the one preprocessing that brings any of them to the theory's setting.

Sources (``ProblemSpec.data``)
------------------------------
``sphere``
    ``x_i`` uniform on the unit sphere, ``y_i ~ N(0, 1)`` (the default; generated from the
    seed in :func:`sublin_bench.make_problem`).
``digits``, ``breast_cancer``, ``wine``, ``diabetes``
    scikit-learn's bundled data sets (``sklearn.datasets.load_*``; they ship inside the
    package, no download): 1797 x 64 (10 classes), 569 x 30 (2), 178 x 13 (3), 442 x 10
    (regression). scikit-learn is the ``data`` extra: ``pip install -e ".[data]"``.
a file path ending in ``.npy``, ``.npz`` or ``.csv``
    ``.npz``: arrays named ``X`` (n, d) and ``y`` (n,). ``.npy`` and ``.csv``: one 2-D
    numeric array whose *last column* is the label (a ``.csv`` may have one header line).
    Labels with at most 20 distinct integer values are read as classes, others as
    regression targets.

Preprocessing (:func:`prepare`, the same for every source but the sphere)
-------------------------------------------------------------------------
1. Rows that are all zero (no measurement: most likely missing data) and columns that are
   constant over the data set (they carry nothing and cannot be scaled) are dropped; the
   remaining columns are centred and scaled to unit variance.
2. Rows are scaled to unit Euclidean norm (the theory assumes ``||x_i|| = 1``); a row
   that is all zero after centring has no direction and is dropped.
3. Exact duplicate rows (after 1-2) are dropped, keeping the first; the theory assumes a
   separation ``delta > 0`` between inputs. Near-duplicates (distance below
   :data:`NEAR`) are counted and reported, not dropped.
4. Labels: classes become +1 / -1, one-vs-rest for more than two classes (the first
   class in sorted order is +1, or ``positive_class``); regression targets are kept.
   Either way they are then centred and scaled to unit variance over the whole data set
   (like the features), before the subset is drawn.
5. ``n`` rows are drawn at random (seeded, without replacement) from what is left; their
   order is the data set's.

The problem records where its data came from (:attr:`Dataset.info`: source name, SHA-256
of the file or of the bundled arrays, how many rows of how many, a hash of the chosen
subset, and the preprocessing report), and every sweep record carries it.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError

__all__ = ["BUNDLED", "Dataset", "load_raw", "prepare", "load", "is_sphere", "separation", "dimension", "NEAR"]

#: The data sets that ship inside scikit-learn, by our name.
BUNDLED = {
    "digits": "load_digits",
    "breast_cancer": "load_breast_cancer",
    "wine": "load_wine",
    "diabetes": "load_diabetes",
}
#: Distance below which two preprocessed inputs count as near-duplicates.
NEAR = 1e-3
_MAX_CLASSES = 20
#: Above this many rows the pairwise report (near-duplicates, separation) is skipped.
_PAIRWISE_MAX = 8192


def is_sphere(source: str) -> bool:
    return source == "sphere"


@dataclass
class Raw:
    X: np.ndarray
    y: np.ndarray
    name: str
    sha256: str
    task: str  # "classification" or "regression"


@dataclass
class Dataset:
    """Preprocessed inputs ``X`` (n, d), unit rows, and labels ``y`` (n,), with
    :attr:`info` saying where they came from and what preprocessing did."""

    X: np.ndarray
    y: np.ndarray
    info: dict = field(default_factory=dict)


def digest(*arrays) -> str:
    """SHA-256 of arrays (their dtypes, shapes and bytes), for recording a data source."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _task(y: np.ndarray) -> str:
    vals = np.unique(y)
    integral = np.all(np.isfinite(y)) and np.all(vals == np.round(vals))
    return "classification" if integral and vals.size <= _MAX_CLASSES else "regression"


@functools.lru_cache(maxsize=8)
def _bundled(name: str) -> Raw:
    try:
        import sklearn.datasets as skd
    except ImportError:
        raise ConfigError(
            f"the data set {name!r} ships with scikit-learn, which is not installed; "
            'install the data extra: pip install -e ".[data]"'
        ) from None
    X, y = getattr(skd, BUNDLED[name])(return_X_y=True)
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return Raw(X=X, y=y, name=name, sha256=digest(X, y), task="regression" if name == "diabetes" else "classification")


def _file(path: Path) -> Raw:
    if not path.exists():
        raise ConfigError(f"data file {str(path)!r} does not exist; give a .npy, .npz or .csv file, or one of: "
                          f"sphere, {', '.join(BUNDLED)}.")
    raw_bytes = path.read_bytes()
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in ("X", "y") if k not in z.files]
                if missing:
                    raise ConfigError(f"{path} has no array named {' or '.join(missing)} (it holds: "
                                      f"{', '.join(z.files) or 'nothing'}); save it with np.savez(path, X=X, y=y).")
                X, y = np.asarray(z["X"]), np.asarray(z["y"])
        elif suffix in (".npy", ".csv"):
            if suffix == ".npy":
                A = np.load(path, allow_pickle=False)
            else:
                A = _read_csv(path)
            A = np.asarray(A)
            if A.ndim != 2 or A.shape[1] < 2:
                raise ConfigError(f"{path} must hold a 2-D array with the features and, last, the label column; "
                                  f"got shape {A.shape}.")
            X, y = A[:, :-1], A[:, -1]
        else:
            raise ConfigError(f"data file {str(path)!r}: unknown type {suffix!r}; use .npy, .npz or .csv.")
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if X.ndim != 2:
        raise ConfigError(f"X in {path} must be 2-D (n, d), got shape {X.shape}.")
    if y.ndim != 1:
        raise ConfigError(f"y in {path} must be 1-D (n,), got shape {y.shape}.")
    if X.shape[0] != y.shape[0]:
        raise ConfigError(f"{path}: X has {X.shape[0]} rows but y has {y.shape[0]} labels; they must match.")
    return Raw(X=X, y=y, name=path.name, sha256=hashlib.sha256(raw_bytes).hexdigest(), task=_task(y))


def _read_csv(path: Path) -> np.ndarray:
    with path.open() as fh:
        first = fh.readline()
    try:
        [float(v) for v in first.strip().split(",")]
        skip = 0
    except ValueError:
        skip = 1  # a header line
    try:
        return np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)
    except ValueError as exc:
        raise ConfigError(f"{path} is not a numeric CSV ({exc}).") from None


def load_raw(source: str) -> Raw:
    """The raw arrays of ``source`` (a bundled name or a file path), not preprocessed."""
    if source in BUNDLED:
        return _bundled(source)
    if is_sphere(source):
        raise ConfigError("the sphere is generated by make_problem, not loaded.")
    p = Path(source)
    if p.suffix.lower() not in (".npy", ".npz", ".csv"):
        raise ConfigError(f"unknown data source {source!r}; use sphere, {', '.join(BUNDLED)}, or a .npy/.npz/.csv file.")
    return _file(p)


def separation(X: np.ndarray, *, antipodal: bool = True) -> float:
    """The smallest distance between two inputs, ``min_{i != j} ||x_i - x_j||``, and with
    ``antipodal`` (the separation the NTK analyses assume for ReLU features, which cannot
    tell ``x`` from ``-x`` apart either) also ``||x_i + x_j||``. ``nan`` for fewer than two
    rows. ``O(n^2)`` memory (scipy's pdist / cdist)."""
    from scipy.spatial.distance import cdist, pdist

    X = np.asarray(X, dtype=np.float64)
    if X.shape[0] < 2:
        return float("nan")
    delta = float(pdist(X).min())
    if antipodal:
        P = cdist(X, -X)
        np.fill_diagonal(P, np.inf)
        delta = min(delta, float(P.min()))
    return delta


def check_finite(X: np.ndarray, y: np.ndarray, prefix: str = "") -> None:
    """ConfigError naming the rows of ``X`` and the labels of ``y`` that are NaN or infinite."""
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad.size:
        raise ConfigError(f"{prefix}X has NaN or infinite entries in rows {_few(bad)}; remove or impute them.")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise ConfigError(f"{prefix}y has NaN or infinite entries at {_few(bad)}.")


def prepare(raw: Raw, *, n: int | None, seed: int, positive_class=None) -> Dataset:
    """The preprocessing of the module docstring; ``n`` rows (all if None)."""
    X, y = raw.X, raw.y
    check_finite(X, y, f"{raw.name}: ")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ConfigError(f"{raw.name}: X has shape {X.shape}; it needs rows and columns.")
    report: dict = {"rows_in_source": int(X.shape[0]), "columns_in_source": int(X.shape[1])}
    raw_zero = np.flatnonzero(~X.any(axis=1))  # all-zero rows: no measurement, most likely missing data
    report["all_zero_rows_dropped"] = [int(r) for r in raw_zero]
    if raw_zero.size:
        if raw_zero.size == X.shape[0]:
            raise ConfigError(f"{raw.name}: every row of X is all zero; there is nothing to learn from.")
        keep = np.flatnonzero(X.any(axis=1))
        X, y = X[keep], y[keep]
    else:
        keep = np.arange(X.shape[0])
    std = X.std(axis=0)
    const = np.flatnonzero(std == 0)
    if const.size == X.shape[1]:
        raise ConfigError(f"{raw.name}: every column is constant; there is nothing to learn from.")
    keep_cols = np.flatnonzero(std > 0)
    report["constant_columns_dropped"] = [int(c) for c in const]
    Xs = (X[:, keep_cols] - X[:, keep_cols].mean(axis=0)) / std[keep_cols]
    norms = np.linalg.norm(Xs, axis=1)
    zero = np.flatnonzero(norms == 0)
    report["zero_rows_dropped"] = [int(keep[r]) for r in zero]
    rows = np.flatnonzero(norms > 0)
    Xu = Xs[rows] / norms[rows, None]
    _, first = np.unique(Xu, axis=0, return_index=True)
    first = np.sort(first)
    report["duplicates_dropped"] = int(rows.size - first.size)
    rows, Xu = rows[first], Xu[first]
    if rows.size == 0:
        raise ConfigError(f"{raw.name}: no row is left after preprocessing (all zero after centring).")
    # labels
    yy = y[rows]
    if raw.task == "classification":
        classes = np.unique(y)
        if classes.size < 2:
            raise ConfigError(f"{raw.name}: the labels have a single class ({classes[0]:g}); nothing to separate.")
        pos = classes[-1] if classes.size == 2 else classes[0]
        if positive_class is not None:
            if float(positive_class) not in set(classes.tolist()):
                raise ConfigError(f"{raw.name}: class {positive_class!r} is not among {classes.tolist()}.")
            pos = float(positive_class)
        yy = np.where(yy == pos, 1.0, -1.0)
        report["labels"] = (f"+1 for class {pos:g}, -1 for " + ("the other" if classes.size == 2 else
                            f"the other {classes.size - 1} (one-vs-rest)") + "; then centred and scaled")
    else:
        report["labels"] = "regression targets, centred and scaled"
    sd = yy.std()
    yy = (yy - yy.mean()) / (sd if sd > 0 else 1.0)
    # subset
    avail = rows.size
    if n is not None:
        if n > avail:
            raise ConfigError(f"{raw.name} has {avail} usable rows after preprocessing, fewer than n = {n}; "
                              f"use --n {avail} or fewer.")
        pick = np.sort(np.random.default_rng([seed, 7]).choice(avail, size=n, replace=False))
    else:
        pick = np.arange(avail)
    X_out, y_out = Xu[pick], yy[pick]
    if pick.size <= _PAIRWISE_MAX:  # O(n^2) memory: skipped for very many rows
        C = np.clip(X_out @ X_out.T, -1.0, 1.0)
        np.fill_diagonal(C, -2.0)
        report["near_duplicate_pairs"] = int(np.count_nonzero(np.triu(np.sqrt(np.maximum(2 - 2 * C, 0)) < NEAR, 1)))
        report["separation"] = separation(X_out)
    else:
        report["near_duplicate_pairs"] = report["separation"] = None
    info = {
        "source": raw.name, "sha256": raw.sha256, "task": raw.task, "rows_used": int(pick.size),
        "rows_available": int(avail), "subset_sha256": digest(keep[rows[pick]])[:16], "d": int(X_out.shape[1]),
        "seed": int(seed), "preprocessing": report,
    }
    return Dataset(X=np.ascontiguousarray(X_out), y=np.ascontiguousarray(y_out), info=info)


def load(source: str, *, n: int | None = None, seed: int = 0, positive_class=None) -> Dataset:
    """``prepare(load_raw(source), ...)``: the preprocessed data of ``source``.

    Examples
    --------
    >>> ds = load("wine", n=20, seed=0)
    >>> ds.X.shape, ds.info["source"], ds.info["rows_available"]
    ((20, 13), 'wine', 178)
    """
    return prepare(load_raw(source), n=n, seed=seed, positive_class=positive_class)


def dimension(source: str) -> int:
    """``d`` of ``source`` after preprocessing (constant columns dropped)."""
    return int(prepare(load_raw(source), n=1, seed=0).X.shape[1])  # validates the data on the way


def _few(idx, limit: int = 8) -> str:
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return shown + (f", ... ({len(idx)} in all)" if len(idx) > limit else "")
