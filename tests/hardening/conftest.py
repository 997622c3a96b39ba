"""Attacks go through the real front door: `chatsite.asgi.application` (origin check, session
cookie, auth middleware) or a real daphne, never a router that skips them."""

from __future__ import annotations

import uuid

import pytest

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
