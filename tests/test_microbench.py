"""pytest-benchmark micro-benchmarks of the index operations (query, update, one step).

In the normal test run (``--benchmark-disable``) each body runs once, as a test; timings
are taken only with ``python -m pytest tests/test_microbench.py --benchmark-enable``.
The numba kernels are compiled (or loaded from cache) in the fixtures, outside every
timed region.
"""

import numpy as np
import pytest

from sublin_bench import ProblemSpec, make_problem, registry

M = 2**16


@pytest.fixture(scope="module", params=[0.24, 0.5], ids=lambda a: f"alpha{a}")
def problem(request):
    return make_problem(ProblemSpec(m=M, n=32, d=32, alpha=request.param))


@pytest.fixture(params=["tree", "band", "dense"])
def name(request):
    return request.param


def test_one_step(benchmark, problem, name):
    registry.create(name, problem).step()  # warm-up: JIT and first-touch outside timing

    def fresh():
        return (registry.create(name, problem),), {}

    info = benchmark.pedantic(lambda t: t.step(), setup=fresh, rounds=5, iterations=1)
    assert info.residual_norm > 0


def test_tree_query(benchmark, problem):
    t = registry.create("tree", problem)
    t.step()
    ptr, idx, z, work = benchmark(t._query)
    assert np.array_equal(ptr, t._ptr) and np.array_equal(idx, t._idx)


@pytest.mark.parametrize("name", ["tree", "band"])
def test_index_update(benchmark, problem, name):
    """One weight update plus the index refresh, with a small fixed g."""
    t = registry.create(name, problem)
    t.step()
    g = np.full(problem.n, 1e-3)
    res = benchmark(t._update, g)
    assert res.moved > 0
