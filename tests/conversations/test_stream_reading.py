"""How `llm` reads a model's stream: server-sent events, chunk objects, error objects."""

from __future__ import annotations

import gc
import sys

import pytest
from openai import AsyncOpenAI

from conversations import llm
from simulator import Fault


def events(*lines: str, ending: str = "\n", cut: int = 0) -> list[tuple[str | None, str]]:
    """The events of a stream of `lines`, its bytes fed in pieces of `cut` bytes (0: whole)."""
    data = "".join(line + ending for line in lines).encode()
    pieces = [data[i : i + cut] for i in range(0, len(data), cut)] if cut else [data]
    reader = llm.ServerSentEvents()
    found = [event for piece in pieces for event in reader.feed(piece)]
    return found + reader.end()


def test_each_blank_line_ends_one_event():
    assert events("data: {}", "", "data: [DONE]", "") == [(None, "{}"), (None, "[DONE]")]


def test_data_lines_of_one_event_are_joined_and_comments_skipped():
    found = events(": keep-alive", "event: note", "data: one", "data:two", "", "")
    assert found == [("note", "one\ntwo")]


def test_an_event_cut_off_by_the_end_of_the_stream_still_counts():
    assert events("data: last", ending="") == [(None, "last")]


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("cut", [0, 1, 2, 3, 7])
def test_events_are_the_same_however_the_bytes_arrive(ending, cut):
    lines = [
        'data: {"text": "김치찌개"}',
        "",
        ": ping",
        "data: a",
        "data: b",
        "",
        "data: [DONE]",
        "",
    ]
    expected = [(None, '{"text": "김치찌개"}'), (None, "a\nb"), (None, "[DONE]")]
    assert events(*lines, ending=ending, cut=cut) == expected


def test_a_read_brings_every_event_it_completes_at_once():
    reader = llm.ServerSentEvents()
    assert reader.feed(b"data: 1\n\ndata: 2\n\ndata: 3") == [(None, "1"), (None, "2")]
    assert reader.feed(b"\n\n") == [(None, "3")]


def request(content: str) -> dict:
    return llm.build_request(
        {"model": "gpt-4o-mini", "temperature": 0.2, "logprobs": True, "top_logprobs": 2},
        [{"role": "user", "content": content}],
    )


async def test_chunks_are_read_as_the_json_objects_the_server_sent(model_server):
    client = AsyncOpenAI(api_key="sk-test", base_url=model_server.base_url, max_retries=0)
    async with client:
        chunks = [
            c async for batch in llm.read_chunks(client, request("Hello there")) for c in batch
        ]
    assert chunks[0]["object"] == "chat.completion.chunk"
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    logprobs = [
        item["token"]
        for c in chunks
        if c["choices"] and c["choices"][0].get("logprobs")
        for item in c["choices"][0]["logprobs"]["content"]
    ]
    assert text and "".join(logprobs) == text
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


async def test_an_error_object_in_the_stream_ends_it_and_logs_the_servers_words(
    model_server, caplog
):
    model_server.config.fault = Fault(kind="error_event", after=2, message="Overloaded, sorry")
    client = AsyncOpenAI(api_key="sk-test", base_url=model_server.base_url, max_retries=0)
    received = []
    async with client:
        with pytest.raises(llm.ModelError) as caught:
            async for batch in llm.read_chunks(client, request("Hello")):
                received.extend(batch)
    assert caught.value.code == "stream_error"
    assert "Overloaded, sorry" not in caught.value.message
    assert "Overloaded, sorry" in caplog.text
    assert sum(1 for c in received if c["choices"] and c["choices"][0]["delta"].get("content")) == 2


@pytest.mark.parametrize(
    "parameters",
    [
        {"model": "gpt-4o-mini", "temperature": 0.2},
        {"model": "gpt-4o-mini", "temperature": 1.0, "logprobs": True, "top_logprobs": 3},
        {
            "model": "gpt-4o-mini",
            "temperature": 0.0,
            "max_completion_tokens": 7,
            "response_format": "json_object",
        },
    ],
)
async def test_the_server_receives_what_the_sdks_create_would_send(model_server, parameters):
    messages = [
        {"role": "system", "content": "Answer in JSON. 한국어로 답하세요."},
        {"role": "user", "content": "안녕하세요, how are you?"},
    ]
    request = llm.build_request(parameters, messages)
    client = AsyncOpenAI(api_key="sk-test", base_url=model_server.base_url, max_retries=0)
    async with client:
        read = [batch async for batch in llm.read_chunks(client, request)]
        created = [chunk async for chunk in await client.chat.completions.create(**request)]
    sent_by_read, sent_by_create = model_server.config.requests[-2:]
    assert sent_by_read == sent_by_create
    assert read and created


async def test_a_loops_client_is_kept_for_its_requests_and_closed_with_the_loop(model_server):
    client = llm.get_client()
    assert llm.get_client() is client
    request = llm.build_request(
        {"model": "gpt-4o-mini", "temperature": 0.0}, [{"role": "user", "content": "Hi"}]
    )
    assert [batch async for batch in llm.read_chunks(client, request)]
    assert [batch async for batch in llm.read_chunks(llm.get_client(), request)]
    await llm.close_client()
    assert client.is_closed()
    fresh = llm.get_client()
    assert fresh is not client and not fresh.is_closed()
    await llm.close_client()


async def test_a_replys_stream_is_closed_by_its_reader_not_left_to_the_collector(model_server):
    """A generator left unfinished (the reply's read ends at the usage chunk, before the
    stream's own end) was closed by the event loop's finalizer hook: a task, and a write to
    wake the loop, for every reply."""
    loop_hooks = sys.get_asyncgen_hooks()
    finalized: list[str] = []

    def finalizer(generator) -> None:
        finalized.append(generator.__qualname__)
        loop_hooks.finalizer(generator)

    sys.set_asyncgen_hooks(firstiter=loop_hooks.firstiter, finalizer=finalizer)
    try:
        events = [event async for event in llm.stream_reply(request("Hello there"))]
        gc.collect()
    finally:
        sys.set_asyncgen_hooks(*loop_hooks)
    assert isinstance(events[-1], llm.Finished) and events[-1].completion_tokens
    assert finalized == []
