"""Fixtures for the simulator's own tests: a real server on a real port, the real SDK.

One server per test module keeps the run fast; the ``simulator`` fixture resets its
config before every test, so each test starts from an unpaced, fault-free model that keeps
the last 50 request bodies.
These tests never need Django.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from openai import AsyncOpenAI

from simulator import SimulatorServer


@pytest.fixture(scope="module")
def simulator_server() -> Iterator[SimulatorServer]:
    with SimulatorServer() as server:
        yield server


@pytest.fixture
def simulator(simulator_server: SimulatorServer) -> SimulatorServer:
    simulator_server.config.reset()
    simulator_server.config.record_requests = 50  # what arrived, for the tests that look
    return simulator_server


@pytest.fixture
async def client(simulator: SimulatorServer) -> AsyncIterator[AsyncOpenAI]:
    sdk = AsyncOpenAI(api_key="sk-test", base_url=simulator.base_url, max_retries=0)
    yield sdk
    await sdk.close()
