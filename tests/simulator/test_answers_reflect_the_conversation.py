"""The answer shows that the context reached the model: persona, question, history, count."""

from __future__ import annotations

from openai import AsyncOpenAI

from .helpers import MODEL, conversation


async def answer(client: AsyncOpenAI, messages: list, **params) -> str:
    response = await client.chat.completions.create(
        model=MODEL, messages=messages, temperature=0.2, **params
    )
    return response.choices[0].message.content


async def test_the_heading_is_the_first_sentence_of_the_system_prompt(client: AsyncOpenAI):
    content = await answer(
        client, conversation("Hi", system="You are a pirate tutor. Answer in one line.")
    )

    assert content.startswith("## You are a pirate tutor\n")


async def test_without_a_system_prompt_the_heading_is_generic(client: AsyncOpenAI):
    content = await answer(client, conversation("Hi"))

    assert content.startswith("## Simulated assistant\n")


async def test_the_last_user_message_is_quoted_verbatim(client: AsyncOpenAI):
    question = "How do I sort a list of tuples by the second item, in place?"

    content = await answer(client, conversation("First question", "An answer", question))

    assert f"You asked: «{question}»" in content


async def test_a_korean_question_gets_a_korean_answer_quoting_it(client: AsyncOpenAI):
    question = "파이썬에서 리스트를 정렬하려면 어떻게 하나요?"

    content = await answer(
        client, conversation(question, system="당신은 친절한 선생님입니다. 짧게 답하세요.")
    )

    assert content.startswith("## 당신은 친절한 선생님입니다\n")
    assert f"질문하신 내용: «{question}»" in content
    assert "대화 맥락: 메시지 2개" in content
    assert "You asked" not in content


async def test_an_earlier_user_message_is_remembered_by_its_first_60_characters(
    client: AsyncOpenAI,
):
    earlier = "My name is Ada and I am planning a trip to the mountains next summer, with my dog."

    content = await answer(client, conversation(earlier, "Nice!", "What should I pack?"))

    assert f"Earlier you said: «{earlier[:60]}»" in content
    assert earlier[:61] not in content


async def test_a_single_question_has_no_earlier_line(client: AsyncOpenAI):
    content = await answer(client, conversation("What should I pack?"))

    assert "Earlier you said" not in content


async def test_the_context_line_counts_messages_of_every_role(client: AsyncOpenAI):
    messages = conversation("one", "two", "three", "four", "five", system="You are terse.")

    content = await answer(client, messages)

    assert "Context: 6 messages" in content


async def test_content_part_messages_are_read_like_strings(client: AsyncOpenAI):
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "You are a chef. Cook."}]},
        {"role": "user", "content": [{"type": "text", "text": "Soup ideas?"}]},
    ]

    content = await answer(client, messages)

    assert content.startswith("## You are a chef\n")
    assert "You asked: «Soup ideas?»" in content


async def test_asking_for_code_brings_a_fenced_code_block(client: AsyncOpenAI):
    content = await answer(client, conversation("Show me some code for a greeting"))

    assert "\n```" in content
    assert content.count("```") == 2


async def test_a_normal_answer_is_forty_to_a_hundred_and_twenty_tokens(client: AsyncOpenAI):
    for question in ("Hi", "What is a monad?", "Tell me about the sea", "코드 예시를 보여 주세요"):
        response = await client.chat.completions.create(
            model=MODEL, messages=conversation(question), temperature=0.2
        )
        assert 40 <= response.usage.completion_tokens <= 120, question
