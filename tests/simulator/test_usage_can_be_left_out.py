"""A server that counts no tokens: some local servers (llama.cpp's among them) send no usage in a
stream even when `stream_options.include_usage` asks for it. The simulator can act that out, for
one request (`[[sim:usage=none]]`) or for all (`config.send_usage = False`)."""

from __future__ import annotations

from openai import AsyncOpenAI

from simulator import SimulatorServer

from .helpers import MODEL, conversation, finish_reasons, stream


async def test_a_usage_directive_leaves_the_usage_chunk_out_of_a_stream(client: AsyncOpenAI):
    chunks = await stream(
        client,
        messages=conversation("Hello there [[sim:usage=none]]"),
        stream_options={"include_usage": True},
    )

    assert finish_reasons(chunks) == ["stop"]
    assert all(chunk.choices and chunk.usage is None for chunk in chunks)


async def test_a_server_configured_without_usage_sends_none_streamed_or_not(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.send_usage = False
    chunks = await stream(
        client, messages=conversation("Hello there"), stream_options={"include_usage": True}
    )
    whole = await client.chat.completions.create(model=MODEL, messages=conversation("Hello"))

    assert finish_reasons(chunks) == ["stop"]
    assert all(chunk.usage is None for chunk in chunks)
    assert whole.usage is None and whole.choices[0].finish_reason == "stop"


async def test_usage_sent_again_by_the_directive_overrides_the_config(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.send_usage = False
    chunks = await stream(
        client,
        messages=conversation("Hello there [[sim:usage=sent]]"),
        stream_options={"include_usage": True},
    )

    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
