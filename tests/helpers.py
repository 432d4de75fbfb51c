"""Problems built by hand for the corner cases (bypassing the generator)."""

import numpy as np

from sublin_bench import Problem, ProblemSpec


def custom_problem(X, y, W0, a, b, dtype="float64") -> Problem:
    X = np.asarray(X, dtype=np.float64)
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(dtype)
    W0 = np.asarray(W0, dtype=dtype)
    spec = ProblemSpec(m=W0.shape[0], n=X.shape[0], d=X.shape[1], alpha=0.0, b=b, dtype=dtype)
    return Problem(
        X=X, y=np.asarray(y, dtype=np.float64), W0=W0, a=np.asarray(a, dtype=np.int8), b=float(b), spec=spec
    )
