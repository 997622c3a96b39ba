"""The chat app asks for a conversation's title after its first answer; the simulator answers
such a request as a model would: a few words of the user's message, in its language."""

from __future__ import annotations

from openai import AsyncOpenAI

from .helpers import MODEL

INSTRUCTION = (
    "Write a short title for this conversation: a few words, in the language of the user's "
    "message. Answer with the title alone."
)


async def title(client: AsyncOpenAI, message: str) -> str:
    response = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": message}],
        max_completion_tokens=30,
    )
    assert response.choices[0].finish_reason == "stop"
    return response.choices[0].message.content


async def test_a_title_request_gets_the_first_words_of_the_message(client: AsyncOpenAI):
    assert await title(client, "Omelettes: how do I keep them soft?\nMore below.") == (
        "Omelettes: how do I keep"
    )
    assert await title(client, "김치찌개 맛있게 끓이는 방법을 알려주세요.") == (
        "김치찌개 맛있게 끓이는 방법을 알려주세요"
    )


async def test_a_title_request_never_quotes_a_directive(client: AsyncOpenAI):
    assert await title(client, "[[sim:tps=50]] “Tea or coffee?”") == "Tea or coffee"


async def test_the_same_words_in_the_middle_of_a_system_prompt_ask_for_an_answer(
    client: AsyncOpenAI,
):
    response = await client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": f"You are a chef. {INSTRUCTION}"},
            {"role": "user", "content": "Omelettes?"},
        ],
    )
    assert len(response.choices[0].message.content.split()) > 20
