from __future__ import annotations

import pytest

from conversations import services

# The async tests ask for `isolated_channel_layer` themselves: an async fixture on a sync test
# would hold an event loop in the thread, which Playwright's sync API (the browser tests that
# may run after these) cannot share.


@pytest.fixture
def conversation(owner, personas, model_server):
    """A conversation of `owner` whose replies come from the simulator."""
    return services.start_conversation(user=owner)
