"""The wire format: what the SDK (and a raw HTTP client) receives matches OpenAI's."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest
from openai import AsyncOpenAI

from simulator import SimulatorServer

from .helpers import MODEL, conversation, finish_reasons, joined, stream


async def test_a_non_streamed_completion_has_a_message_a_stop_and_usage(client: AsyncOpenAI):
    response = await client.chat.completions.create(
        model=MODEL, messages=conversation("Hello there"), temperature=0.2
    )

    assert response.object == "chat.completion"
    assert response.id.startswith("chatcmpl-")
    assert response.model == MODEL
    assert response.system_fingerprint == "fp_sim"
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert "Hello there" in choice.message.content
    assert choice.finish_reason == "stop"
    assert choice.logprobs is None
    usage = response.usage
    assert usage.completion_tokens > 20
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_a_stream_opens_with_the_role_and_closes_with_finish_then_usage(client: AsyncOpenAI):
    chunks = await stream(
        client,
        messages=conversation("Hello there"),
        stream_options={"include_usage": True},
    )

    first, *middle, finish, usage = chunks
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    assert all(c.choices[0].delta.content for c in middle)
    assert all(c.choices[0].finish_reason is None for c in [first, *middle])
    assert finish.choices[0].finish_reason == "stop"
    assert finish.choices[0].delta.content is None
    assert usage.choices == []
    assert usage.usage is not None
    assert usage.usage.completion_tokens == len(middle)
    assert all(c.usage is None for c in chunks[:-1])
    assert {(c.id, c.created, c.model, c.system_fingerprint) for c in chunks} == {
        (first.id, first.created, MODEL, "fp_sim")
    }
    assert all(c.object == "chat.completion.chunk" for c in chunks)


async def test_without_include_usage_there_is_no_usage_chunk(client: AsyncOpenAI):
    chunks = await stream(client, messages=conversation("Hello there"))

    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert finish_reasons(chunks) == ["stop"]


async def test_streamed_deltas_join_to_the_non_streamed_content(client: AsyncOpenAI):
    messages = conversation("Explain streaming", system="You are a patient teacher.")

    whole = await client.chat.completions.create(model=MODEL, messages=messages, temperature=0.2)
    chunks = await stream(client, messages=messages, temperature=0.2)

    assert joined(chunks) == whole.choices[0].message.content


async def test_the_raw_stream_is_server_sent_events_ending_in_done(simulator: SimulatorServer):
    body = {
        "model": MODEL,
        "messages": conversation("Hi"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with httpx2.AsyncClient() as http:
        response = await http.post(f"{simulator.base_url}/chat/completions", json=body)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.text.split("\n\n")
    assert events[-1] == ""
    assert events[-2] == "data: [DONE]"
    assert all(event.startswith("data: ") for event in events[:-1])
    payloads = [json.loads(event[len("data: ") :]) for event in events[:-2]]
    assert payloads[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
        "refusal": None,
    }
    assert all("usage" in p and p["usage"] is None for p in payloads[:-1])
    assert payloads[-2]["choices"][0]["delta"] == {}
    assert payloads[-1]["choices"] == []
    assert payloads[-1]["usage"]["total_tokens"] > 0


async def test_the_models_are_listed(client: AsyncOpenAI):
    page = await client.models.list()

    ids = [model.id for model in page.data]
    assert {"gpt-4o-mini", "gpt-4o", "sim-1"} <= set(ids)
    assert all(model.owned_by == "simulator" and model.object == "model" for model in page.data)
    assert (await client.models.retrieve("sim-1")).id == "sim-1"


async def test_an_unknown_model_is_not_found_like_openai(client: AsyncOpenAI):
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="gpt-9", messages=conversation("Hi"))

    assert caught.value.body == {
        "message": "The model `gpt-9` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }


async def test_models_configured_at_run_time_are_served(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.models.append("my-model")

    response = await client.chat.completions.create(model="my-model", messages=conversation("Hi"))

    assert response.model == "my-model"


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"temperature": 2.5}, "temperature", "decimal_above_max_value"),
        ({"temperature": -0.1}, "temperature", "decimal_below_min_value"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs", "integer_above_max_value"),
        ({"top_logprobs": 3}, "top_logprobs", "invalid_value"),
        ({"max_completion_tokens": 0}, "max_completion_tokens", "integer_below_min_value"),
        ({"messages": []}, "messages", "empty_array"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
    ],
)
async def test_invalid_parameters_are_rejected_like_openai(
    client: AsyncOpenAI, params: dict, param: str, code: str
):
    arguments = {"model": MODEL, "messages": conversation("Hi"), **params}

    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(**arguments)

    assert caught.value.body["type"] == "invalid_request_error"
    assert caught.value.body["param"] == param
    assert caught.value.body["code"] == code


@pytest.mark.parametrize("missing", ["model", "messages"])
async def test_a_missing_required_parameter_is_named(simulator: SimulatorServer, missing: str):
    body = {"model": MODEL, "messages": conversation("Hi")}
    del body[missing]
    async with httpx2.AsyncClient() as http:
        response = await http.post(f"{simulator.base_url}/chat/completions", json=body)

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": f"Missing required parameter: '{missing}'.",
            "type": "invalid_request_error",
            "param": missing,
            "code": "missing_required_parameter",
        }
    }


async def test_an_unknown_path_answers_an_openai_shaped_404(simulator: SimulatorServer):
    async with httpx2.AsyncClient() as http:
        response = await http.get(f"{simulator.base_url}/nowhere")

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (GET /v1/nowhere)"
