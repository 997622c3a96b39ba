"""``response_format={"type": "json_object"}``: a JSON object, or OpenAI's 400."""

from __future__ import annotations

import json

import openai
import pytest
from openai import AsyncOpenAI

from .helpers import MODEL, conversation, joined, stream

JSON_FORMAT = {"type": "json_object"}


async def test_json_mode_answers_a_valid_json_object_reflecting_the_context(
    client: AsyncOpenAI,
):
    messages = conversation("Hello", "Hi!", "Reply in JSON please", system="You are a clerk.")

    response = await client.chat.completions.create(
        model=MODEL, messages=messages, response_format=JSON_FORMAT, temperature=0.2
    )

    document = json.loads(response.choices[0].message.content)
    assert document["persona"] == "You are a clerk"
    assert document["question"] == "Reply in JSON please"
    assert document["context_messages"] == 4
    assert document["earlier"] == "Hello"
    assert isinstance(document["answer"], str)
    assert len(document["points"]) >= 2


async def test_the_word_json_may_be_anywhere_in_any_case(client: AsyncOpenAI):
    messages = conversation("Give me three colours", system="Always answer as JSON.")

    chunks = await stream(client, messages=messages, response_format=JSON_FORMAT)

    assert isinstance(json.loads(joined(chunks)), dict)


async def test_json_mode_stays_valid_even_when_hot(client: AsyncOpenAI):
    response = await client.chat.completions.create(
        model=MODEL,
        messages=conversation("json: 한국어로 답해 주세요"),
        response_format=JSON_FORMAT,
        temperature=2.0,
    )

    document = json.loads(response.choices[0].message.content)
    assert document["question"] == "json: 한국어로 답해 주세요"


async def test_json_cut_by_the_length_limit_is_invalid(client: AsyncOpenAI):
    response = await client.chat.completions.create(
        model=MODEL,
        messages=conversation("answer in json"),
        response_format=JSON_FORMAT,
        max_completion_tokens=10,
    )

    assert response.choices[0].finish_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.choices[0].message.content)


async def test_json_mode_without_the_word_json_is_a_bad_request(client: AsyncOpenAI):
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=MODEL, messages=conversation("Give me three colours"), response_format=JSON_FORMAT
        )

    assert caught.value.status_code == 400
    assert caught.value.body == {
        "message": "'messages' must contain the word 'json' in some form, to use "
        "'response_format' of type 'json_object'.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": None,
    }
