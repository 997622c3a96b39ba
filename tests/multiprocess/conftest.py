from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _each_test_has_its_own_channel_layer(isolated_channel_layer):
    return isolated_channel_layer


@pytest.fixture
def redis_url() -> str:
    """The Redis these tests share between processes; the in-memory layer cannot cross one."""
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip("needs REDIS_URL (CI runs this suite again with PostgreSQL and Redis)")
    return url
