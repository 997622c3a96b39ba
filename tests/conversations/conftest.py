from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _each_test_has_its_own_channel_layer(isolated_channel_layer):
    return isolated_channel_layer
