"""Log-probabilities describe the emitted text and behave like a real model's."""

from __future__ import annotations

import math

import pytest
from openai import AsyncOpenAI

from .helpers import MODEL, content_chunks, conversation, stream


async def logprobs_of(client: AsyncOpenAI, temperature: float, top: int):
    response = await client.chat.completions.create(
        model=MODEL,
        messages=conversation("Describe a lighthouse", system="You are a poet."),
        temperature=temperature,
        logprobs=True,
        top_logprobs=top,
    )
    return response, response.choices[0].logprobs.content


@pytest.mark.parametrize("temperature", [0.2, 1.0, 1.9])
async def test_tokens_join_to_the_content_and_alternatives_are_consistent(
    client: AsyncOpenAI, temperature: float
):
    response, entries = await logprobs_of(client, temperature, top=5)

    assert "".join(e.token for e in entries) == response.choices[0].message.content
    assert len(entries) == response.usage.completion_tokens
    for entry in entries:
        assert entry.logprob <= 0
        assert entry.bytes == list(entry.token.encode("utf-8"))
        alternatives = entry.top_logprobs
        assert len(alternatives) == 5
        assert len({a.token for a in alternatives}) == 5
        values = [a.logprob for a in alternatives]
        assert values == sorted(values, reverse=True)
        assert sum(math.exp(v) for v in values) <= 1
        assert (entry.token, entry.logprob) in [(a.token, a.logprob) for a in alternatives]
        assert all(a.bytes == list(a.token.encode("utf-8")) for a in alternatives)


async def test_a_cool_model_is_sure_of_every_token(client: AsyncOpenAI):
    _, entries = await logprobs_of(client, 0.2, top=3)

    for entry in entries:
        assert entry.top_logprobs[0].token == entry.token
        assert math.exp(entry.logprob) > 0.8


async def test_a_hot_model_is_much_less_sure(client: AsyncOpenAI):
    _, cool = await logprobs_of(client, 0.2, top=3)
    _, hot = await logprobs_of(client, 1.8, top=3)

    def mean_probability(entries) -> float:
        return sum(math.exp(e.logprob) for e in entries) / len(entries)

    assert mean_probability(hot) < 0.5 < 0.8 < mean_probability(cool)
    assert any(e.top_logprobs[0].token != e.token for e in hot)


async def test_top_logprobs_zero_gives_logprobs_without_alternatives(client: AsyncOpenAI):
    _, entries = await logprobs_of(client, 0.2, top=0)

    assert entries
    assert all(e.top_logprobs == [] for e in entries)


async def test_without_logprobs_none_are_sent(client: AsyncOpenAI):
    response = await client.chat.completions.create(model=MODEL, messages=conversation("Hi"))
    chunks = await stream(client, messages=conversation("Hi"))

    assert response.choices[0].logprobs is None
    assert all(c.choices[0].logprobs is None for c in chunks)


async def test_each_streamed_chunk_carries_the_logprob_of_its_own_token(client: AsyncOpenAI):
    chunks = await stream(
        client,
        messages=conversation("Describe a lighthouse"),
        temperature=0.2,
        logprobs=True,
        top_logprobs=2,
    )

    for chunk in content_chunks(chunks):
        (entry,) = chunk.choices[0].logprobs.content
        assert entry.token == chunk.choices[0].delta.content
        assert entry.top_logprobs[0].token == entry.token
        assert len(entry.top_logprobs) == 2


async def test_korean_tokens_carry_their_utf8_bytes(client: AsyncOpenAI):
    response = await client.chat.completions.create(
        model=MODEL,
        messages=conversation("등대에 대해 설명해 주세요"),
        temperature=0.2,
        logprobs=True,
        top_logprobs=2,
    )
    entries = response.choices[0].logprobs.content

    korean = [e for e in entries if any("가" <= ch <= "힣" for ch in e.token)]
    assert korean
    for entry in korean:
        assert bytes(entry.bytes).decode("utf-8") == entry.token
        assert all(bytes(a.bytes).decode("utf-8") == a.token for a in entry.top_logprobs)
