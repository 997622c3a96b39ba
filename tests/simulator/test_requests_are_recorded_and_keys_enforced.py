"""The config records what reached the model (the latest requests, when asked to) and can
demand an API key."""

from __future__ import annotations

import openai
import pytest
from openai import AsyncOpenAI

from simulator import SimulatorServer

from .helpers import MODEL, conversation


async def test_every_request_body_is_recorded_in_order(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    first = conversation("First", system="You are brief.")
    second = conversation("First", "Reply", "Second")

    await client.chat.completions.create(model=MODEL, messages=first, temperature=0.3)
    await client.chat.completions.create(model=MODEL, messages=second, stream=True)

    assert simulator.config.request_count == 2
    recorded = simulator.config.requests
    assert recorded[0]["messages"] == first
    assert recorded[0]["temperature"] == 0.3
    assert recorded[1]["messages"] == second
    assert recorded[1]["stream"] is True


async def test_rejected_requests_are_recorded_too(client: AsyncOpenAI, simulator: SimulatorServer):
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="nope", messages=conversation("Hi"))

    assert simulator.config.requests[0]["model"] == "nope"


async def test_only_the_latest_requests_are_kept(client: AsyncOpenAI, simulator: SimulatorServer):
    simulator.config.record_requests = 2

    for text in ("One", "Two", "Three"):
        await client.chat.completions.create(model=MODEL, messages=conversation(text))

    assert simulator.config.request_count == 3
    assert [body["messages"] for body in simulator.config.requests] == [
        conversation("Two"),
        conversation("Three"),
    ]


async def test_the_config_is_fresh_for_every_test(simulator: SimulatorServer):
    assert simulator.config.request_count == 0
    assert simulator.config.fault is None


async def test_a_wrong_api_key_is_an_authentication_error(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.api_key = "sk-right-key-123456"

    with pytest.raises(openai.AuthenticationError) as caught:
        await client.chat.completions.create(model=MODEL, messages=conversation("Hi"))
    with pytest.raises(openai.AuthenticationError):
        await client.models.list()

    assert caught.value.code == "invalid_api_key"
    assert caught.value.body["message"].startswith("Incorrect API key provided")
    assert simulator.config.request_count == 0


async def test_the_right_api_key_is_accepted(simulator: SimulatorServer):
    simulator.config.api_key = "sk-right-key-123456"
    sdk = AsyncOpenAI(api_key="sk-right-key-123456", base_url=simulator.base_url, max_retries=0)

    response = await sdk.chat.completions.create(model=MODEL, messages=conversation("Hi"))
    await sdk.close()

    assert response.choices[0].finish_reason == "stop"
