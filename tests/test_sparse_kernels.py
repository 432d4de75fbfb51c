"""The shared kernels of the sparse step, against plain numpy."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from impls._sparse import RADIX_BITS, stable_order


@given(arrays(np.int64, st.integers(0, 300), elements=st.integers(0, 2**40)))
def test_stable_order_is_a_stable_argsort(idx):
    np.testing.assert_array_equal(stable_order(idx), np.argsort(idx, kind="stable"))


@given(st.integers(1, 40), st.integers(0, 2**23), st.integers(0, 2**32 - 1))
def test_stable_order_on_fired_sets_shaped_input(n, m, seed):
    """n sorted runs of neuron indices below m (what derive() sorts), with repeats
    across runs, including the widths where a further radix pass starts."""
    rng = np.random.default_rng(seed)
    rows = [np.sort(rng.choice(m + 1, size=min(m + 1, int(rng.integers(0, 50))), replace=False)) for _ in range(n)]
    idx = np.concatenate(rows).astype(np.int64)
    np.testing.assert_array_equal(stable_order(idx), np.argsort(idx, kind="stable"))


def test_stable_order_pass_boundaries():
    for top in (0, 1, 2**RADIX_BITS - 1, 2**RADIX_BITS, 2 ** (2 * RADIX_BITS), 2**62):
        idx = np.array([top, 0, top, 1, 0], dtype=np.int64)
        np.testing.assert_array_equal(stable_order(idx), np.argsort(idx, kind="stable"))
