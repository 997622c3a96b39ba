"""Attacks go through the real front door: `chatsite.asgi.application` (origin check, session
cookie, auth middleware) or a real daphne, never a router that skips them."""

from __future__ import annotations

import gc
import uuid

import pytest

from chatsite.asgi import tune_collector
from conversations import services


@pytest.fixture
def conversation(owner, personas, model_server):
    """A conversation of `owner` whose replies come from the simulator."""
    return services.start_conversation(user=owner)


@pytest.fixture
def address() -> str:
    """An address of its own for each test: login throttling counts per address, and with
    Redis the counts outlive the test run."""
    number = uuid.uuid4().int
    return f"10.{number % 250 + 1}.{number // 250 % 250}.{number // 62500 % 250 + 1}"


@pytest.fixture
def server_collector():
    """The garbage collector as a server process runs it (`CHAT_GC_TUNING`, chatsite/asgi.py),
    for a test that times a victim's replies. Untuned, a full collection walks everything the
    test process has loaded (pytest and every test module besides the app: 140 ms here, 80 in
    a server) holding every thread, and one in a dozen pieces of an import sets one off; the
    victim would be timed against the test process's heap, not the server's."""
    thresholds = gc.get_threshold()
    gc.collect()
    tune_collector()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
