"""Which messages fit the token budget of a call.

Chat APIs are stateless: every call resends the conversation. We send the system prompt and as
many of the most recent messages as fit the model's budget, always keeping the newest message.

Tokens are counted with tiktoken when its encoding files are already on the machine (tiktoken
would otherwise try to download them, and tests never need the network). Without them we use an
estimate: one token per CJK or Hangul character, one per four other characters, plus four per
message for the role and separators, as OpenAI documents for its chat format.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import unicodedata
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings

MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3

_ENCODING_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}


class Encoding(Protocol):
    def encode(self, text: str, **kwargs: Any) -> list[int]: ...


@functools.cache
def _cached_encoding(name: str) -> Encoding | None:
    """tiktoken's encoding when its file is in tiktoken's cache, else None (no download)."""
    cache_dir = (
        os.environ.get("TIKTOKEN_CACHE_DIR")
        or os.environ.get("DATA_GYM_CACHE_DIR")
        or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    )
    url = _ENCODING_URLS[name]
    if not os.path.exists(os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())):
        return None
    try:
        import tiktoken

        return tiktoken.get_encoding(name)
    except Exception:  # a damaged cache must not break a chat
        return None


def _encoding_for(model: str) -> Encoding | None:
    older = model.startswith(("gpt-3.5", "gpt-4")) and not model.startswith(("gpt-4o", "gpt-4.1"))
    return _cached_encoding("cl100k_base" if older else "o200k_base")


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def estimate_tokens(text: str) -> int:
    wide = sum(1 for char in text if _is_wide(char))
    narrow = len(text) - wide
    return wide + (narrow + 3) // 4


def count_tokens(text: str, model: str = "") -> int:
    encoding = _encoding_for(model)
    if encoding is not None:
        return len(encoding.encode(text, disallowed_special=()))
    return estimate_tokens(text)


def message_tokens(content: str, model: str = "") -> int:
    """What one message costs in a call: its text and its role and separators."""
    return count_tokens(content, model) + MESSAGE_OVERHEAD


def prompt_tokens(messages: list[dict[str, str]], model: str = "") -> int:
    """The prompt tokens of a call's messages, counted as `select_context` counts them: for a
    reply whose model server reported no usage."""
    return REPLY_PRIMING + sum(message_tokens(m.get("content") or "", model) for m in messages)


def budget_for(model: str) -> int:
    """The settings' context window for `model`. The model list's, where the admin set one,
    comes first: `catalog.context_windows` (a query), which the services pass as `budget`."""
    return settings.CHAT_CONTEXT_TOKENS_PER_MODEL.get(model, settings.CHAT_CONTEXT_TOKENS)


@dataclass(frozen=True)
class HistoryItem:
    id: int
    role: str
    content: str


@dataclass(frozen=True)
class Context:
    messages: list[dict[str, str]]
    context_from_id: int | None
    prompt_tokens: int


def select_context(
    *, system_prompt: str, history: list[HistoryItem], model: str, budget: int | None = None
) -> Context:
    """The system prompt plus the newest messages that fit `budget` tokens, oldest first.

    The system prompt and the newest message are always sent, even over budget: without them
    there is nothing to answer.
    """
    budget = budget_for(model) if budget is None else budget
    used = REPLY_PRIMING
    system: list[dict[str, str]] = []
    if system_prompt:
        system = [{"role": "system", "content": system_prompt}]
        used += message_tokens(system_prompt, model)
    chosen: list[HistoryItem] = []
    for item in reversed(history):
        cost = message_tokens(item.content, model)
        if chosen and used + cost > budget:
            break
        chosen.append(item)
        used += cost
    chosen.reverse()
    return Context(
        messages=system + [{"role": item.role, "content": item.content} for item in chosen],
        context_from_id=chosen[0].id if chosen else None,
        prompt_tokens=used,
    )
