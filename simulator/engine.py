"""The simulated model: a chat-completions request body in, a tokenised answer out.

Pure and synchronous (no I/O, no clock): the HTTP layer decides pacing and faults, this
module decides *what* the model says. The rules a test can rely on:

- Cool (``temperature <= 0.7``): the random generator is seeded only from the messages,
  so the same messages always give the same text and the same log-probabilities.
- Warm (``> 0.7``): the seed is mixed with real randomness (or with the request's
  ``seed`` parameter when given, which makes warm answers repeatable again), so word
  choices vary between calls.
- Hot (``>= 1.5``): prose drifts into gibberish, more the closer to 2.0.
- ``max_completion_tokens`` (or legacy ``max_tokens``) cuts the answer at exactly that
  many tokens with ``finish_reason="length"``; ``[[sim:tokens=N]]`` makes it at least N.
- ``response_format={"type": "json_object"}`` gives a JSON object, tokenised the same way
  (so a length cut leaves invalid JSON, as with a real model).
- A request for a conversation's title (a system message that begins with
  ``TITLE_REQUEST``, as the chat app asks after a conversation's first answer) gets the
  first few words of the last user message, as a model would title it.
"""

from __future__ import annotations

import random
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .conversation import Conversation, estimate_prompt_tokens, message_text
from .directives import parse_directives
from .tokens import COOL_TEMPERATURE, Token, score, tokenize
from .writer import Outline, compose_json, compose_markdown, wants_code

FinishReason = Literal["stop", "length"]

# The first words of the chat app's title instruction (its wording is the app's own; the
# simulator knows only how it begins, and imports nothing of the app).
TITLE_REQUEST = "Write a short title for this conversation"
TITLE_WORDS = 5
_TITLE_TRIM = re.compile(r"^[\s\"'“”‘’«»]+|[\s\"'“”‘’«».,;:!?。？！]+$")


def asks_for_title(messages: list[Any]) -> bool:
    """Whether the request's first system message is a title instruction."""
    systems = [
        message_text(m)
        for m in messages
        if isinstance(m, Mapping) and m.get("role") in ("system", "developer")
    ]
    return bool(systems) and systems[0].lstrip().startswith(TITLE_REQUEST)


def title_for(question: str) -> str:
    """The first few words of the question's first line, without quotes or end punctuation."""
    lines = question.strip().splitlines()
    words = lines[0].split()[:TITLE_WORDS] if lines else []
    return _TITLE_TRIM.sub("", " ".join(words)) or "Conversation"


@dataclass(frozen=True)
class Completion:
    """What the model produced, before any transport concerns."""

    tokens: tuple[Token, ...]
    finish_reason: FinishReason
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens)

    @property
    def content(self) -> str:
        return "".join(token.text for token in self.tokens)


def _generators(
    digest: int, temperature: float, seed: object
) -> tuple[random.Random, random.Random]:
    """(text generator, log-probability generator) seeded as the temperature rules say."""
    if temperature <= COOL_TEMPERATURE:
        base = digest
    elif isinstance(seed, int) and not isinstance(seed, bool):
        base = digest ^ (seed & 0xFFFFFFFFFFFFFFFF)
    else:
        base = digest ^ secrets.randbits(64)
    return random.Random(base), random.Random(base ^ 0x5EED)


def _limit(request: Mapping[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = request.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def is_json_mode(request: Mapping[str, Any]) -> bool:
    response_format = request.get("response_format")
    return isinstance(response_format, Mapping) and response_format.get("type") == "json_object"


def generate(request: Mapping[str, Any]) -> Completion:
    """Answer a chat-completions request body (already validated by the app)."""
    messages = request.get("messages") or []
    conversation = Conversation.from_messages(messages)
    directives = parse_directives(conversation.raw_last_user)
    temperature = request.get("temperature")
    temperature = 1.0 if temperature is None else float(temperature)
    text_rng, score_rng = _generators(conversation.digest, temperature, request.get("seed"))

    outline = Outline(
        persona=conversation.persona,
        question=conversation.question,
        message_count=conversation.message_count,
        earlier=conversation.earlier,
        korean=conversation.korean,
        with_code=wants_code(conversation.question, conversation.digest),
        images=conversation.images,
        files=conversation.files,
    )
    if asks_for_title(messages):
        texts = tokenize(title_for(conversation.question))
    else:
        compose = compose_json if is_json_mode(request) else compose_markdown
        texts = tokenize(compose(outline, text_rng, temperature, directives.min_tokens))

    finish_reason: FinishReason = "stop"
    limit = _limit(request)
    if limit is not None and len(texts) > limit:
        texts = texts[:limit]
        finish_reason = "length"

    top_logprobs = request.get("top_logprobs") if request.get("logprobs") else 0
    tokens = score(texts, temperature, int(top_logprobs or 0), score_rng)
    return Completion(
        tokens=tuple(tokens),
        finish_reason=finish_reason,
        prompt_tokens=estimate_prompt_tokens(messages),
    )
