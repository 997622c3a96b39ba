"""Small helpers the simulator tests share: building conversations, reading streams."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionChunk

from simulator.writer import LEXICON

MODEL = "gpt-4o-mini"


def conversation(*turns: str, system: str | None = None) -> list[dict[str, str]]:
    """Messages alternating user/assistant, starting (and normally ending) with the user."""
    messages = [{"role": "system", "content": system}] if system is not None else []
    for index, text in enumerate(turns):
        messages.append({"role": "user" if index % 2 == 0 else "assistant", "content": text})
    return messages


async def stream(client: AsyncOpenAI, **params: Any) -> list[ChatCompletionChunk]:
    """Every chunk of a streamed completion, in order."""
    params.setdefault("model", MODEL)
    response = await client.chat.completions.create(stream=True, **params)
    return [chunk async for chunk in response]


async def stream_into(
    received: list[ChatCompletionChunk], client: AsyncOpenAI, **params: Any
) -> None:
    """Like :func:`stream`, but keeps what arrived if iteration raises."""
    params.setdefault("model", MODEL)
    response = await client.chat.completions.create(stream=True, **params)
    async for chunk in response:
        received.append(chunk)


def content_chunks(chunks: Iterable[ChatCompletionChunk]) -> list[ChatCompletionChunk]:
    return [c for c in chunks if c.choices and c.choices[0].delta.content]


def joined(chunks: Iterable[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def finish_reasons(chunks: Iterable[ChatCompletionChunk]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


def unknown_word_fraction(content: str, prompt: Iterable[str]) -> float:
    """Share of the answer's words found neither in the simulator's lexicon nor the prompt."""
    known = LEXICON | {word.lower() for text in prompt for word in re.findall(r"\w+", text)}
    words = [w.lower() for w in re.findall(r"\w+", content) if not w.isdigit()]
    return sum(word not in known for word in words) / len(words)
