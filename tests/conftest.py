"""Hypothesis profiles and shared fixtures.

Profiles: ``ci`` (derandomized, no deadline: reproducible on a fresh machine, selected
when ``CI`` is set), ``dev`` (random, more examples) and ``thorough`` (many examples).
Choose with ``HYPOTHESIS_PROFILE=dev pytest``.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=40,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", deadline=None, max_examples=60, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", deadline=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _isolated_registry():
    """Undo any in-process registration a test makes."""
    from sublin_bench import registry

    before = dict(registry._extra)
    yield
    registry._extra.clear()
    registry._extra.update(before)
