"""The software prefetch compiles for every array type the kernels hand it and changes
no value (the kernels' results are checked against dense by the conformance suite)."""

import numba
import numpy as np
import pytest

from sublin_bench.impls._prefetch import prefetch, prefetch_row


@numba.njit
def _gather(A, rows, ahead):
    s = 0.0
    for t in range(rows.shape[0]):
        if t + ahead < rows.shape[0]:
            prefetch_row(A, rows[t + ahead])
            prefetch(A, rows[t + ahead] * A.shape[1])
        for c in range(A.shape[1]):
            s += A[rows[t], c]
    return s


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.bool_])
@pytest.mark.parametrize("cols", [1, 3, 32, 33])
def test_prefetching_gather_equals_plain_gather(dtype, cols):
    rng = np.random.default_rng(0)
    A = (rng.standard_normal((500, cols)) * 10).astype(dtype)
    rows = np.sort(rng.choice(500, 200, replace=False))
    rows[-1] = 499  # the last row: prefetching its end stays inside the array
    assert _gather(A, rows, 8) == _gather(A, rows, 0) == pytest.approx(float(A[rows].astype(np.float64).sum()))


def test_prefetch_rejects_what_it_cannot_address():
    @numba.njit
    def bad(x):
        prefetch(x, 0)

    with pytest.raises(numba.core.errors.TypingError):
        bad(1.0)
