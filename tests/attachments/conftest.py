from __future__ import annotations

import pytest

from conversations import services


@pytest.fixture(autouse=True)
def _each_test_has_its_own_channel_layer(isolated_channel_layer):
    return isolated_channel_layer


@pytest.fixture
def conversation(owner, personas, model_server):
    """A conversation of `owner` whose replies come from the simulator."""
    return services.start_conversation(user=owner)
