"""``[[sim:...]]`` in the last user message controls that request and is never quoted."""

from __future__ import annotations

import openai
import pytest
from openai import AsyncOpenAI

from simulator import Fault, SimulatorServer

from .helpers import MODEL, content_chunks, conversation, finish_reasons, stream, stream_into


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
async def test_an_http_fault_directive_raises_the_matching_error(
    client: AsyncOpenAI, status: int, exception: type
):
    with pytest.raises(exception):
        await client.chat.completions.create(
            model=MODEL, messages=conversation(f"Hi [[sim:fault=http:{status}]]")
        )


async def test_a_drop_directive_cuts_the_stream_after_three_chunks(client: AsyncOpenAI):
    received: list = []

    with pytest.raises(openai.APIConnectionError):
        await stream_into(received, client, messages=conversation("[[sim:fault=drop:3]] Hi"))

    assert len(content_chunks(received)) == 3


async def test_a_stall_directive_is_caught_by_the_read_timeout(client: AsyncOpenAI):
    received: list = []
    impatient = client.with_options(timeout=openai.Timeout(5, read=0.5))

    with pytest.raises(openai.APITimeoutError):
        await stream_into(received, impatient, messages=conversation("Hi [[sim:fault=stall:2]]"))

    assert len(content_chunks(received)) == 2


async def test_stream_ending_directives_work(client: AsyncOpenAI):
    no_finish = await stream(client, messages=conversation("Hi [[sim:fault=no_finish]]"))
    filtered = await stream(client, messages=conversation("Hi [[sim:fault=content_filter:4]]"))
    received: list = []
    with pytest.raises(ValueError):
        await stream_into(received, client, messages=conversation("[[sim:fault=broken_chunk:2]]"))

    assert finish_reasons(no_finish) == []
    assert finish_reasons(filtered) == ["content_filter"]
    assert len(content_chunks(filtered)) == 4
    assert len(content_chunks(received)) == 2


async def test_directives_are_stripped_from_the_quoted_question(client: AsyncOpenAI):
    response = await client.chat.completions.create(
        model=MODEL,
        messages=conversation("Tell me [[sim:tps=0]] a joke [[sim:delay=0,tokens=10]]"),
    )

    content = response.choices[0].message.content
    assert "You asked: «Tell me a joke»" in content
    assert "[[sim" not in content


async def test_a_directive_in_an_earlier_message_is_ignored_and_not_quoted(client: AsyncOpenAI):
    messages = conversation("Old one [[sim:fault=http:500]]", "Sure.", "New question")

    response = await client.chat.completions.create(model=MODEL, messages=messages)

    content = response.choices[0].message.content
    assert "Earlier you said: «Old one»" in content
    assert "[[sim" not in content


async def test_a_directive_overrides_the_configured_fault(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.fault = Fault(kind="http", status=500)

    spared = await client.chat.completions.create(
        model=MODEL, messages=conversation("Hi [[sim:fault=none]]")
    )
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(
            model=MODEL, messages=conversation("Hi [[sim:fault=http:429]]")
        )

    assert spared.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    "directive", ["[[sim:tps]]", "[[sim:speed=3]]", "[[sim:tps=-1]]", "[[sim:fault=boom]]"]
)
async def test_a_malformed_directive_is_a_bad_request(client: AsyncOpenAI, directive: str):
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=MODEL, messages=conversation(f"Hi {directive}"))

    assert caught.value.body["param"] == "messages"
