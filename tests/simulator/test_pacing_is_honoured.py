"""Tokens arrive at the configured pace; a client leaving mid-stream is no error.

Timings are checked loosely: this proves the simulator paces at all, not how fast it is.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from openai import AsyncOpenAI

from simulator import SimulatorServer

from .helpers import MODEL, content_chunks, conversation, stream

MESSAGES = conversation("Count slowly")


async def test_twenty_tokens_at_twenty_per_second_take_about_a_second(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.tokens_per_second = 20

    started = time.monotonic()
    chunks = await stream(client, messages=MESSAGES, max_completion_tokens=20)
    elapsed = time.monotonic() - started

    assert len(content_chunks(chunks)) == 20
    assert 0.9 <= elapsed < 3


async def test_a_pace_directive_overrides_the_fast_default(client: AsyncOpenAI):
    started = time.monotonic()
    chunks = await stream(
        client, messages=conversation("Count [[sim:tps=20]]"), max_completion_tokens=10
    )

    assert len(content_chunks(chunks)) == 10
    assert time.monotonic() - started >= 0.4


async def test_the_first_token_waits_for_the_first_token_delay(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.first_token_delay = 0.5
    started = time.monotonic()
    response = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    arrivals = []
    async for chunk in response:
        arrivals.append((time.monotonic() - started, chunk))

    first_content = next(t for t, c in arrivals if c.choices and c.choices[0].delta.content)
    assert first_content >= 0.45
    assert arrivals[-1][0] < first_content + 0.5  # unpaced after the first token


async def test_a_delay_directive_also_slows_a_non_streamed_answer(client: AsyncOpenAI):
    started = time.monotonic()
    await client.chat.completions.create(model=MODEL, messages=conversation("Hi [[sim:delay=0.4]]"))

    assert time.monotonic() - started >= 0.35


async def test_a_client_leaving_mid_stream_is_not_an_error(
    client: AsyncOpenAI, simulator: SimulatorServer, caplog: pytest.LogCaptureFixture
):
    simulator.config.tokens_per_second = 50
    disconnects_before = simulator.activity.disconnects

    with caplog.at_level(logging.DEBUG):
        response = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        seen = 0
        async for chunk in response:
            seen += bool(chunk.choices and chunk.choices[0].delta.content)
            if seen == 3:
                break
        await response.close()
        for _ in range(50):
            if simulator.activity.open_responses == 0:
                break
            await asyncio.sleep(0.02)
        still_open = simulator.activity.open_responses
        disconnects = simulator.activity.disconnects - disconnects_before
        after = await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert still_open == 0  # the server stopped generating well before the answer's end
    assert disconnects == 1
    assert after.choices[0].finish_reason == "stop"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
