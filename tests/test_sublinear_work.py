"""The counted per-iteration work of a sublinear implementation grows like the fired count,
not like m. Counters, not timings: this is a property of the algorithm, deterministic and
independent of the machine's load."""

import numpy as np
import pytest
from scipy.special import ndtr

from sublin_bench import ProblemSpec, make_problem, registry, threshold_for

SUBLINEAR = [n for n in registry.names() if registry.get(n).sublinear and registry.available(n)[0]]


def mean_work(name, m, alpha, steps=4):
    t = registry.create(name, make_problem(ProblemSpec(m=m, n=8, d=8, alpha=alpha, seed=2)))
    infos = t.run(steps)
    return float(np.mean([i.work["work"] for i in infos[1:]]))


@pytest.mark.parametrize("name", SUBLINEAR)
@pytest.mark.parametrize("alpha", [0.24, 0.5])
def test_work_grows_like_the_fired_count(name, alpha):
    m = 2**12
    expected = 16 * ndtr(-threshold_for(16 * m, alpha)) / ndtr(-threshold_for(m, alpha))
    ratio = mean_work(name, 16 * m, alpha) / mean_work(name, m, alpha)
    # the tree's log m factor and sampling noise allow up to twice the fired-count ratio
    assert ratio < 2 * expected, (ratio, expected)
    assert ratio < 0.75 * 16


def test_dense_work_is_linear():
    assert mean_work("dense", 2**16, 0.5) / mean_work("dense", 2**12, 0.5) == pytest.approx(16)


@pytest.mark.parametrize("name", SUBLINEAR)
def test_counters_accumulate(name):
    t = registry.create(name, make_problem(ProblemSpec(m=4096, n=4, d=4, alpha=0.3)))
    infos = t.run(3)
    total = t.counters
    assert total["steps"] == 3
    assert total["work"] == sum(i.work["work"] for i in infos)
    assert total["neurons_moved"] == sum(i.moved for i in infos)
