"""Content arrays: the simulator tells how many images a message carries and their sizes (it
decodes them), quotes each attached file, and refuses an image it cannot decode as OpenAI does."""

from __future__ import annotations

import base64

import openai
import pytest
from openai import AsyncOpenAI

from tests.files import image_bytes

from .helpers import MODEL


def data_url(data: bytes, content_type: str = "image/png") -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def image_part(data: bytes, content_type: str = "image/png") -> dict:
    return {"type": "image_url", "image_url": {"url": data_url(data, content_type)}}


async def answer(client: AsyncOpenAI, content: list[dict]) -> str:
    response = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}], temperature=0.2
    )
    return response.choices[0].message.content


async def test_images_are_counted_and_measured(client: AsyncOpenAI):
    text = await answer(
        client,
        [
            {"type": "text", "text": "What is this?"},
            image_part(image_bytes(640, 480)),
            image_part(image_bytes(20, 10, fmt="JPEG"), "image/jpeg"),
        ],
    )
    assert "Images: 2 (640×480, 20×10)" in text
    assert "You asked: «What is this?»" in text


async def test_a_file_part_is_quoted_and_not_taken_for_the_question(client: AsyncOpenAI):
    text = await answer(
        client,
        [
            {"type": "text", "text": "Summarise"},
            {"type": "text", "text": '<file name="notes.md">\n\n# Plan\nShip it\n</file>'},
        ],
    )
    assert "From «notes.md»: «# Plan»" in text
    assert "You asked: «Summarise»" in text


async def test_korean_answers_describe_in_korean(client: AsyncOpenAI):
    text = await answer(
        client, [{"type": "text", "text": "이게 뭐예요?"}, image_part(image_bytes(8, 6))]
    )
    assert "이미지: 1개 (8×6)" in text


async def test_an_image_that_does_not_decode_is_refused_with_a_400(client: AsyncOpenAI):
    with pytest.raises(openai.BadRequestError) as refused:
        await answer(client, [{"type": "text", "text": "Hi"}, image_part(b"not an image")])
    assert refused.value.code == "invalid_image_format"
