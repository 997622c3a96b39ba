"""The in-process server: ephemeral ports, prompt start and stop, the shared demo instance."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import openai
import pytest
from openai import AsyncOpenAI

from simulator import (
    Fault,
    SimulatorConfig,
    SimulatorServer,
    ensure_background_simulator,
)

from .helpers import MODEL, conversation

ROOT = Path(__file__).resolve().parents[2]


def test_port_zero_gives_each_server_its_own_free_port():
    with SimulatorServer() as first, SimulatorServer() as second:
        assert first.port != second.port
        assert first.base_url == f"http://127.0.0.1:{first.port}/v1"
        assert httpx2.get(f"{first.base_url}/models").status_code == 200
        assert httpx2.get(f"{second.base_url}/models").status_code == 200


def test_leaving_the_context_stops_the_thread_and_frees_the_port():
    with SimulatorServer() as server:
        port = server.port
        assert server.running

    assert not server.running
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"http://127.0.0.1:{port}/v1/models")


async def test_stop_returns_promptly_with_a_stalled_stream_open():
    server = SimulatorServer(SimulatorConfig(fault=Fault(kind="stall", after=1))).start()
    sdk = AsyncOpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0)
    response = await sdk.chat.completions.create(
        model=MODEL, messages=conversation("Hi"), stream=True
    )
    await response.__anext__()
    await response.__anext__()

    started = time.monotonic()
    await asyncio.to_thread(server.stop)
    stopped_in = time.monotonic() - started

    assert stopped_in < 1.5
    assert not server.running
    with pytest.raises(openai.APIConnectionError):
        await response.__anext__()
    await sdk.close()


def test_the_shared_background_simulator_is_started_once():
    first = ensure_background_simulator()
    second = ensure_background_simulator()

    assert first == second
    assert first.startswith("http://127.0.0.1:")
    assert httpx2.get(f"{first}/models").json()["object"] == "list"


def test_the_demo_config_reads_the_environment():
    config = SimulatorConfig.from_env(
        {"SIMULATOR_TPS": "30", "SIMULATOR_FIRST_TOKEN_DELAY": "0.25"}
    )
    unpaced = SimulatorConfig.from_env({"SIMULATOR_TPS": "0"})

    assert config.tokens_per_second == 30
    assert config.first_token_delay == 0.25
    assert unpaced.tokens_per_second is None
    assert SimulatorConfig.from_env({}) == SimulatorConfig()


def test_python_dash_m_serves_the_simulator_standalone():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", str(port), "--tps", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx2.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                break
            except httpx2.TransportError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "the simulator did not come up"
                time.sleep(0.1)
        assert response.status_code == 200
        assert "sim-1" in [m["id"] for m in response.json()["data"]]
    finally:
        process.terminate()
        process.wait(timeout=10)
