import math

import numpy as np
import pytest

from sublin_bench import ConfigError, MemoryBudgetError, Problem, ProblemSpec, make_problem, threshold_for
from sublin_bench.memory import check_fits


def test_same_spec_same_arrays_bit_for_bit():
    spec = ProblemSpec(m=1000, n=7, d=5, alpha=0.3, seed=11)
    p, q = make_problem(spec), make_problem(spec)
    for name in ("X", "y", "W0", "a"):
        assert getattr(p, name).tobytes() == getattr(q, name).tobytes()
    assert p.b == q.b == threshold_for(1000, 0.3)


def test_known_values_pin_the_generator():
    # Pins the random streams: a change here changes every published number, and must
    # come with a new GENERATOR_VERSION (these are version 2's: block streams, hashed signs).
    p = make_problem(ProblemSpec(m=4, n=2, d=3, alpha=0.24, seed=0))
    np.testing.assert_allclose(np.linalg.norm(p.X, axis=1), 1.0, rtol=1e-15)
    assert p.W0.dtype == np.float64 and p.a.dtype == np.int8
    assert set(np.unique(p.a)) <= {-1, 1}
    fingerprint = (float(p.W0.sum()), float(p.X.sum()), float(p.y.sum()), int(p.a.sum()))
    assert fingerprint == pytest.approx(_FINGERPRINT, rel=1e-12)


_FINGERPRINT = (2.247861645413581, 1.8680246177241406, -1.1069697451161504, 2)


def test_neurons_of_a_narrow_problem_are_a_prefix_of_a_wider_one():
    small = make_problem(ProblemSpec(m=100, n=3, d=4, alpha=0.2, seed=5))
    wide = make_problem(ProblemSpec(m=70000, n=3, d=4, alpha=0.2, seed=5))
    assert np.array_equal(small.W0, wide.W0[:100])
    assert np.array_equal(small.a, wide.a[:100])
    assert np.array_equal(small.X, wide.X)


@pytest.mark.parametrize("m, alpha", [(1, 0.2), (100, 0.5), (65537, 0.24), (70000, 0.2)])
def test_narrowed_problem_equals_the_generated_one(m, alpha):
    wide = make_problem(ProblemSpec(m=70000, n=3, d=4, alpha=0.2, seed=5))
    spec = ProblemSpec(m=m, n=3, d=4, alpha=alpha, seed=5)
    cut, fresh = wide.narrowed(spec), make_problem(spec)
    assert cut.spec == spec and cut.b == fresh.b
    for name in ("X", "y", "W0", "a"):
        assert np.array_equal(getattr(cut, name), getattr(fresh, name)), name
    with pytest.raises(ValueError):
        cut.W0[0, 0] = 1.0


@pytest.mark.parametrize(
    "change, match", [({"m": 70001}, "wider"), ({"n": 4}, "n"), ({"seed": 6}, "seed"), ({"dtype": "float32"}, "dtype")]
)
def test_narrowed_refuses_what_it_cannot_cut(change, match):
    wide = make_problem(ProblemSpec(m=70000, n=3, d=4, alpha=0.2, seed=5))
    with pytest.raises(ConfigError, match=match):
        wide.narrowed(wide.spec.replace(**change))


def test_float32_problem_is_the_float64_problem_rounded():
    s64 = ProblemSpec(m=70000, n=3, d=2, alpha=0.2, seed=2)
    p64, p32 = make_problem(s64), make_problem(s64.replace(dtype="float32"))
    assert p32.W0.dtype == np.float32
    assert np.array_equal(p32.W0, p64.W0.astype(np.float32))


def test_arrays_are_read_only():
    p = make_problem(ProblemSpec(m=8, n=2, d=2, alpha=0.1))
    with pytest.raises(ValueError):
        p.W0[0, 0] = 1.0


def test_threshold_default_and_override():
    assert ProblemSpec(m=2**20, n=1, d=1, alpha=0.24).threshold == pytest.approx(math.sqrt(0.48 * math.log(2**20)))
    assert ProblemSpec(m=10, n=1, d=1, alpha=0.0).threshold == 0.0
    assert ProblemSpec(m=10, n=1, d=1, alpha=0.5, b=1.5).threshold == 1.5
    assert ProblemSpec(m=1, n=1, d=1, alpha=0.5).threshold == 0.0


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(m=0, n=1, d=1, alpha=0.1), "m must be at least 1"),
        (dict(m=2.5, n=1, d=1, alpha=0.1), "m must be an integer"),
        (dict(m=True, n=1, d=1, alpha=0.1), "m must be an integer"),
        (dict(m=4, n=0, d=1, alpha=0.1), "n must be at least 1"),
        (dict(m=4, n=1, d=-3, alpha=0.1), "d must be at least 1"),
        (dict(m=4, n=1, d=1, alpha=1.0), "alpha must lie in [0, 1), got 1.0"),
        (dict(m=4, n=1, d=1, alpha=-0.1), "alpha must lie in [0, 1)"),
        (dict(m=4, n=1, d=1, alpha=float("nan")), "alpha must lie in [0, 1)"),
        (dict(m=4, n=1, d=1, alpha="x"), "alpha must be a number"),
        (dict(m=4, n=1, d=1, alpha=0.1, b=-1.0), "b must be a finite number >= 0, got -1.0"),
        (dict(m=4, n=1, d=1, alpha=0.1, b=float("inf")), "b must be a finite number"),
        (dict(m=4, n=1, d=1, alpha=0.1, dtype="float16"), "dtype must be one of float64, float32"),
        (dict(m=4, n=1, d=1, alpha=0.1, seed=-1), "seed must be at least 0"),
    ],
)
def test_bad_spec_names_the_value(kwargs, fragment):
    with pytest.raises(ConfigError) as exc:
        ProblemSpec(**kwargs)
    assert fragment in str(exc.value)


def test_integral_floats_are_accepted_as_sizes():
    assert ProblemSpec(m=8.0, n=2, d=2, alpha=0.1).m == 8


def test_from_arrays_normalises_rows():
    p = Problem.from_arrays([[3.0, 4.0], [0.0, -2.0]], [1.0, 2.0], m=32, alpha=0.2, seed=3)
    np.testing.assert_allclose(p.X, [[0.6, 0.8], [0.0, -1.0]])
    assert p.source == "arrays" and p.spec.n == 2 and p.spec.d == 2
    # the neurons are those of the generated problem with the same seed
    gen = make_problem(ProblemSpec(m=32, n=2, d=2, alpha=0.2, seed=3))
    assert np.array_equal(p.W0, gen.W0)


@pytest.mark.parametrize(
    "X, y, fragment",
    [
        ([[1.0, 0.0], [0.0, 0.0]], [1.0, 2.0], "all-zero rows 1"),
        ([[1.0, np.nan]], [1.0], "NaN or infinite entries in rows 0"),
        ([[1.0, 0.0]], [np.inf], "y has NaN or infinite entries at 0"),
        ([[1.0, 0.0], [0.0, 1.0]], [1.0], "X has 2 rows but y has 1 labels"),
        ([1.0, 0.0], [1.0], "X must be a 2-D array"),
        ([[1.0, 0.0]], [[1.0]], "y must be a 1-D array"),
        ([["a", "b"]], [1.0], "numeric arrays"),
    ],
)
def test_from_arrays_rejects_bad_input(X, y, fragment):
    with pytest.raises(ConfigError) as exc:
        Problem.from_arrays(X, y, m=8, alpha=0.1)
    assert fragment in str(exc.value)


def test_oversized_w0_is_refused_before_allocating():
    p = make_problem(ProblemSpec(m=2**40, n=4, d=64, alpha=0.2))  # W0 is not generated yet
    assert p.w0_rows(2**40 - 3, 2**40).shape == (3, 64)  # any rows can be regenerated
    with pytest.raises(MemoryBudgetError) as exc:
        p.W0
    assert "TiB" in str(exc.value) and "smaller m" in str(exc.value)


def test_check_fits_uses_given_budget():
    check_fits(100, "x", available=1000)
    with pytest.raises(MemoryBudgetError):
        check_fits(900, "x", available=1000)
