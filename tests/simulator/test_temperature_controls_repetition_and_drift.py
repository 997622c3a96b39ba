"""Cool answers repeat exactly, warm ones vary, hot ones drift into gibberish."""

from __future__ import annotations

from openai import AsyncOpenAI

from .helpers import MODEL, conversation, unknown_word_fraction

SYSTEM = "You are a careful reviewer."
QUESTION = "How should I structure a small web project?"


async def contents(client: AsyncOpenAI, temperature: float, times: int, **params) -> list[str]:
    results = []
    for _ in range(times):
        response = await client.chat.completions.create(
            model=MODEL,
            messages=conversation(QUESTION, system=SYSTEM),
            temperature=temperature,
            **params,
        )
        results.append(response.choices[0].message.content)
    return results


async def test_at_temperature_0_2_the_same_input_gives_the_same_answer(client: AsyncOpenAI):
    answers = await contents(client, 0.2, 3)

    assert len(set(answers)) == 1


async def test_cool_log_probabilities_repeat_too(client: AsyncOpenAI):
    runs = []
    for _ in range(2):
        response = await client.chat.completions.create(
            model=MODEL,
            messages=conversation(QUESTION),
            temperature=0.0,
            logprobs=True,
            top_logprobs=3,
        )
        runs.append(response.choices[0].logprobs.model_dump())

    assert runs[0] == runs[1]


async def test_at_temperature_1_0_word_choices_vary_between_calls(client: AsyncOpenAI):
    answers = await contents(client, 1.0, 5)

    assert len(set(answers)) >= 3
    assert all(f"You asked: «{QUESTION}»" in answer for answer in answers)


async def test_a_seed_makes_a_warm_answer_repeatable(client: AsyncOpenAI):
    answers = await contents(client, 1.2, 2, seed=42)

    assert answers[0] == answers[1]


async def test_at_temperature_1_8_the_text_drifts_into_gibberish(client: AsyncOpenAI):
    prompt = [SYSTEM, QUESTION]
    cool = (await contents(client, 0.2, 1))[0]
    hot = await contents(client, 1.8, 3)

    assert unknown_word_fraction(cool, prompt) == 0
    assert all(unknown_word_fraction(answer, prompt) > 0.2 for answer in hot)
    assert all(f"You asked: «{QUESTION}»" in answer for answer in hot)


async def test_gibberish_grows_with_temperature(client: AsyncOpenAI):
    prompt = [SYSTEM, QUESTION]

    def mean_fraction(answers: list[str]) -> float:
        return sum(unknown_word_fraction(a, prompt) for a in answers) / len(answers)

    at_1_2 = mean_fraction(await contents(client, 1.2, 4))
    at_1_6 = mean_fraction(await contents(client, 1.6, 4))
    at_2_0 = mean_fraction(await contents(client, 2.0, 4))

    assert at_1_2 == 0
    assert 0 < at_1_6 < at_2_0
