"""Each configured fault, as the real ``openai`` SDK (3.57, on httpx2) experiences it.

What the SDK raises, observed rather than assumed:

- http 401/404/429/500/503: ``AuthenticationError``, ``NotFoundError``, ``RateLimitError``,
  ``InternalServerError``, raised by ``create()`` itself (before any iteration).
- drop: ``APIConnectionError`` while iterating, caused by ``httpx2.RemoteProtocolError``
  ("peer closed connection without sending complete message body").
- stall: ``APITimeoutError`` (caused by ``httpx2.ReadTimeout``) once the read timeout passes.
- broken_chunk: a bare ``json.JSONDecodeError`` while iterating: the SDK does *not* wrap an
  unparsable SSE line in an ``openai`` exception, so ``except openai.APIError`` misses it.
- error_event: ``openai.APIError`` with the server's message while iterating (an error object
  in the stream); not a status error: the response itself was 200.
- no_finish / content_filter: no exception; the stream just ends.
"""

from __future__ import annotations

import json
import logging

import httpx2
import openai
import pytest
from openai import AsyncOpenAI

from simulator import Fault, SimulatorServer

from .helpers import MODEL, content_chunks, conversation, finish_reasons, stream, stream_into

MESSAGES = conversation("Tell me a story")
SHORT_READ = openai.Timeout(5, read=0.5)

HTTP_FAULTS = [
    (401, openai.AuthenticationError),
    (404, openai.NotFoundError),
    (429, openai.RateLimitError),
    (500, openai.InternalServerError),
    (503, openai.InternalServerError),
]


@pytest.mark.parametrize(("status", "exception"), HTTP_FAULTS)
@pytest.mark.parametrize("streamed", [True, False])
async def test_an_http_fault_raises_the_matching_sdk_exception(
    client: AsyncOpenAI, simulator: SimulatorServer, status: int, exception: type, streamed: bool
):
    simulator.config.fault = Fault(kind="http", status=status)

    with pytest.raises(exception) as caught:
        await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=streamed)

    assert caught.value.status_code == status
    assert set(caught.value.body) == {"message", "type", "param", "code"}


async def test_a_rate_limit_says_when_to_retry(client: AsyncOpenAI, simulator: SimulatorServer):
    simulator.config.fault = Fault(kind="http", status=429, retry_after=2)

    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "rate_limit_exceeded"
    assert "Please try again in 2s" in caught.value.message


async def test_a_fault_limited_to_one_request_lets_the_retry_succeed(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.fault = Fault(kind="http", status=503, times=1)

    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    response = await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert response.choices[0].finish_reason == "stop"
    assert simulator.config.fault is None


async def test_the_sdk_retries_a_503_by_itself_when_allowed(simulator: SimulatorServer):
    simulator.config.fault = Fault(kind="http", status=503, times=1)
    retrying = AsyncOpenAI(api_key="sk-test", base_url=simulator.base_url, max_retries=1)

    response = await retrying.chat.completions.create(model=MODEL, messages=MESSAGES)
    await retrying.close()

    assert response.choices[0].message.content
    assert simulator.config.request_count == 2


async def test_a_dropped_stream_raises_a_connection_error_after_the_chunks_it_sent(
    client: AsyncOpenAI, simulator: SimulatorServer, caplog: pytest.LogCaptureFixture
):
    simulator.config.fault = Fault(kind="drop", after=3)
    received: list = []

    with caplog.at_level(logging.WARNING), pytest.raises(openai.APIConnectionError) as caught:
        await stream_into(received, client, messages=MESSAGES)

    assert type(caught.value) is openai.APIConnectionError
    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)
    assert len(received) == 4  # the role chunk and three content chunks
    assert len(content_chunks(received)) == 3
    assert finish_reasons(received) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_dropped_non_streamed_answer_raises_a_connection_error(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.fault = Fault(kind="drop")

    with pytest.raises(openai.APIConnectionError) as caught:
        await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)


async def test_a_stalled_stream_is_caught_by_the_read_timeout(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.fault = Fault(kind="stall", after=2)
    received: list = []

    with pytest.raises(openai.APITimeoutError) as caught:
        await stream_into(received, client.with_options(timeout=SHORT_READ), messages=MESSAGES)

    assert isinstance(caught.value.__cause__, httpx2.ReadTimeout)
    assert len(content_chunks(received)) == 2


async def test_a_stall_that_ends_closes_the_connection(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.fault = Fault(kind="stall", after=1, stall_seconds=0.3)
    received: list = []

    with pytest.raises(openai.APIConnectionError):
        await stream_into(received, client, messages=MESSAGES)

    assert len(content_chunks(received)) == 1


async def test_no_finish_ends_the_stream_without_any_finish_reason_or_usage(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.fault = Fault(kind="no_finish")

    chunks = await stream(client, messages=MESSAGES, stream_options={"include_usage": True})

    assert len(content_chunks(chunks)) > 20
    assert finish_reasons(chunks) == []
    assert all(c.usage is None and c.choices for c in chunks)


async def test_a_broken_chunk_raises_a_bare_json_decode_error_while_iterating(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.fault = Fault(kind="broken_chunk", after=2)
    received: list = []

    with pytest.raises(json.JSONDecodeError) as caught:
        await stream_into(received, client, messages=MESSAGES)

    assert not isinstance(caught.value, openai.OpenAIError)
    assert len(content_chunks(received)) == 2


async def test_an_error_event_in_the_stream_raises_an_api_error_with_its_message(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.fault = Fault(kind="error_event", after=3, message="Overloaded, sorry")
    received: list = []

    with pytest.raises(openai.APIError) as caught:
        await stream_into(received, client, messages=MESSAGES)

    assert not isinstance(caught.value, openai.APIStatusError)
    assert "Overloaded, sorry" in str(caught.value)
    assert len(content_chunks(received)) == 3


async def test_a_non_streamed_error_event_is_an_http_500(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.fault = Fault(kind="error_event", message="Overloaded, sorry")

    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert "Overloaded, sorry" in str(caught.value)


async def test_content_filter_stops_the_stream_with_that_finish_reason(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.fault = Fault(kind="content_filter", after=4)

    chunks = await stream(client, messages=MESSAGES, stream_options={"include_usage": True})

    assert len(content_chunks(chunks)) == 4
    assert finish_reasons(chunks) == ["content_filter"]
    assert chunks[-1].usage.completion_tokens == 4


async def test_content_filter_cuts_a_non_streamed_answer_too(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.fault = Fault(kind="content_filter", after=4)

    response = await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert response.choices[0].finish_reason == "content_filter"
    assert response.usage.completion_tokens == 4


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("http:429", Fault(kind="http", status=429)),
        ("drop:3", Fault(kind="drop", after=3)),
        ("stall:2", Fault(kind="stall", after=2)),
        ("stall:2:10", Fault(kind="stall", after=2, stall_seconds=10)),
        ("no_finish", Fault(kind="no_finish")),
        ("broken_chunk:2", Fault(kind="broken_chunk", after=2)),
        ("error_event:5", Fault(kind="error_event", after=5)),
        ("content_filter", Fault(kind="content_filter")),
    ],
)
def test_faults_parse_from_their_directive_spelling(spec: str, expected: Fault):
    assert Fault.parse(spec) == expected


@pytest.mark.parametrize("spec", ["boom", "http", "http:200", "drop:x", "no_finish:1"])
def test_malformed_fault_spellings_are_refused(spec: str):
    with pytest.raises(ValueError):
        Fault.parse(spec)


async def test_an_empty_fault_opens_the_stream_and_closes_it_with_nothing(client: AsyncOpenAI):
    chunks = await stream(client, messages=conversation("Hi [[sim:fault=empty]]"))
    assert chunks == []


async def test_a_request_over_the_context_window_is_refused_as_openai_does(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.context_window = 20
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=MODEL, messages=conversation("word " * 100), stream=True
        )
    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length is 20 tokens" in caught.value.message
    short = await client.chat.completions.create(model=MODEL, messages=conversation("Hi"))
    # The answer has what the window has left: it is cut where the window is full.
    assert short.choices[0].finish_reason == "length"
    assert short.usage.prompt_tokens + short.usage.completion_tokens == 20
