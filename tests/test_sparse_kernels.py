"""The shared kernels of the sparse step, against plain numpy."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sublin_bench.impls._sparse import RADIX_BITS, firing_order, stable_order
from sublin_bench import ProblemSpec, make_problem, registry
from sublin_bench.errors import ConfigError


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


def _rounded_up(v):
    """The smallest float32 at or above each float64 of ``v`` (plain numpy)."""
    k = v.astype(np.float32)
    low = k.astype(np.float64) < v
    k[low] = np.nextafter(k[low], np.float32(np.inf))
    return k


_F64 = st.floats(-1e300, 1e300)  # past float32's range, short of float64 overflow


@given(
    arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 5)), elements=_F64),
    st.integers(1, 4),
    st.floats(0, 1e-3),
)
def test_fill_keys_rounds_up_to_float32(Z, log_L, slack_scale):
    """Keys are ``z + slack`` rounded up to float32, stored at (row // L, input, row % L);
    covers signs, zeros, subnormals and values beyond the float32 range."""
    from sublin_bench.impls.tree import fill_keys

    L = 2**log_L
    t, n = Z.shape
    slack = slack_scale * np.abs(Z).max(axis=1)
    s0 = 3  # rows start mid-block
    nb = -(-(s0 + t) // L)
    keys = np.full((nb, n, L), -np.inf, dtype=np.float32)
    fill_keys(keys, Z, slack, s0)
    with np.errstate(over="ignore"):  # float32 overflow to +inf is the right upper key
        want = _rounded_up(Z + slack[:, None])
    got = keys.transpose(0, 2, 1).reshape(nb * L, n)[s0 : s0 + t]
    np.testing.assert_array_equal(got, want)
    assert np.all(got.astype(np.float64) >= Z + slack[:, None])


@given(st.integers(1, 400), st.integers(1, 12), st.integers(1, 6), st.floats(0.0, 2.0), st.integers(1, 64),
       st.integers(0, 2**32 - 1))
def test_firing_order_puts_the_most_firing_neurons_first(m, n, d, b, rows, seed):
    """A permutation; fired-input counts descending; ties in the problem's order; the
    same whatever the block size."""
    rng = np.random.default_rng(seed)
    W, X = rng.standard_normal((m, d)), rng.standard_normal((n, d))
    perm = firing_order(W, np.ascontiguousarray(X.T), b, rows)
    assert perm.dtype == np.int64
    np.testing.assert_array_equal(np.sort(perm), np.arange(m))
    c = (W @ X.T > b).sum(axis=1)[perm]
    assert np.all(np.diff(c) <= 0)
    for k in np.unique(c):
        assert np.all(np.diff(perm[c == k]) > 0)


@pytest.mark.parametrize("name", ["tree", "band"])
def test_firing_order_is_the_default_and_public_arrays_keep_the_problem_order(name):
    p = make_problem(ProblemSpec(m=500, n=6, d=3, alpha=0.2, seed=3))
    t = registry.create(name, p)
    given_order = registry.create(name, p, neuron_order="given")
    assert t.neuron_order == "firing" and given_order.neuron_order == "given"
    assert not np.array_equal(t._perm, np.arange(p.m))  # the stored order differs here
    np.testing.assert_array_equal(t.weights(), p.W0)
    for a, b in zip(t.active_sets(), given_order.active_sets()):
        np.testing.assert_array_equal(a, b)
    union = np.unique(t._idx)  # at build, the fired neurons are the first rows stored
    assert 0 < union.size < p.m
    np.testing.assert_array_equal(union, np.arange(union.size))


@pytest.mark.parametrize("name", ["tree", "band"])
def test_unknown_neuron_order_is_refused_by_name(name):
    p = make_problem(ProblemSpec(m=64, n=3, d=2, alpha=0.2, seed=1))
    with pytest.raises(ConfigError, match=r"neuron_order must be one of 'firing', 'given', got 'random'"):
        registry.create(name, p, neuron_order="random")
