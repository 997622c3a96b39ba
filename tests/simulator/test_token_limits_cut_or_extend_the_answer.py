"""``max_completion_tokens`` cuts at exactly N tokens; ``[[sim:tokens=N]]`` makes at least N."""

from __future__ import annotations

from openai import AsyncOpenAI

from simulator import SimulatorServer

from .helpers import MODEL, content_chunks, conversation, finish_reasons, joined, stream

MESSAGES = conversation("Tell me about rivers", system="You are a geographer.")


async def full_answer(client: AsyncOpenAI) -> str:
    response = await client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.2)
    return response.choices[0].message.content


async def test_max_completion_tokens_5_gives_exactly_5_tokens_and_length(client: AsyncOpenAI):
    response = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, temperature=0.2, max_completion_tokens=5
    )

    assert response.usage.completion_tokens == 5
    assert response.choices[0].finish_reason == "length"
    assert (await full_answer(client)).startswith(response.choices[0].message.content)


async def test_legacy_max_tokens_cuts_the_same_way(client: AsyncOpenAI):
    response = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, temperature=0.2, max_tokens=7, logprobs=True
    )

    assert response.usage.completion_tokens == 7
    assert len(response.choices[0].logprobs.content) == 7
    assert response.choices[0].finish_reason == "length"


async def test_a_server_that_reads_only_max_tokens_ignores_the_newer_name(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.limit_fields = ("max_tokens",)  # as llama-cpp-python's server does
    ignored = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, temperature=0.2, max_completion_tokens=5
    )
    read = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, temperature=0.2, max_tokens=5
    )

    assert ignored.choices[0].finish_reason == "stop" and ignored.usage.completion_tokens > 5
    assert read.choices[0].finish_reason == "length" and read.usage.completion_tokens == 5


async def test_a_streamed_answer_is_cut_into_exactly_5_content_chunks(client: AsyncOpenAI):
    chunks = await stream(
        client,
        messages=MESSAGES,
        temperature=0.2,
        max_completion_tokens=5,
        stream_options={"include_usage": True},
    )

    assert len(content_chunks(chunks)) == 5
    assert finish_reasons(chunks) == ["length"]
    assert chunks[-1].usage.completion_tokens == 5
    assert (await full_answer(client)).startswith(joined(chunks))


async def test_a_limit_above_the_answer_length_still_stops_normally(client: AsyncOpenAI):
    response = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, temperature=0.2, max_completion_tokens=1000
    )

    assert response.choices[0].finish_reason == "stop"
    assert response.choices[0].message.content == await full_answer(client)


async def test_a_tokens_directive_makes_a_long_answer(client: AsyncOpenAI):
    response = await client.chat.completions.create(
        model=MODEL,
        messages=conversation("Write at length [[sim:tokens=300]]"),
        temperature=0.2,
    )

    assert response.usage.completion_tokens >= 300
    assert response.choices[0].finish_reason == "stop"
    assert "You asked: «Write at length»" in response.choices[0].message.content


async def test_a_long_answer_can_be_truncated_by_the_limit(client: AsyncOpenAI):
    response = await client.chat.completions.create(
        model=MODEL,
        messages=conversation("Write at length [[sim:tokens=500]]"),
        max_completion_tokens=250,
    )

    assert response.usage.completion_tokens == 250
    assert response.choices[0].finish_reason == "length"
