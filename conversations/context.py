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


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if part.get("type") == "text")
    return content or ""


def prompt_tokens(messages: list[dict[str, Any]], model: str = "") -> int:
    """The prompt tokens of a call's messages, counted as `select_context` counts them: for a
    reply whose model server reported no usage."""
    total = REPLY_PRIMING
    for message in messages:
        content = message.get("content")
        total += message_tokens(content_text(content), model)
        if isinstance(content, list):
            images = sum(1 for part in content if part.get("type") == "image_url")
            total += images * IMAGE_UNKNOWN_TOKENS
    return total


# The most of a model's window kept for its answer when no limit is set: a quarter of the
# window, up to this.
ANSWER_ROOM_MAX = 4096


def prompt_budget(window: int, answer_limit: int | None = None) -> int:
    """The tokens a call's messages may take of the model's `window`; the rest is its
    answer's. A server whose window holds both refuses a prompt that leaves no room for the
    answer (or, llama.cpp's Python server streaming, opens the answer and closes it empty):
    sent whole, a local model's conversation failed from its third long message on. The answer
    gets its limit where one is set, else a quarter of the window (at most ANSWER_ROOM_MAX);
    never more than half."""
    room = answer_limit or min(window // 4, ANSWER_ROOM_MAX)
    return window - min(room, window // 2)


def budget_for(model: str) -> int:
    """The settings' context window for `model`. The model list's, where the admin set one,
    comes first: `catalog.context_windows` (a query), which the services pass as `budget`."""
    return settings.CHAT_CONTEXT_TOKENS_PER_MODEL.get(model, settings.CHAT_CONTEXT_TOKENS)


# What OpenAI counts for an image it reads in detail: a base, and a price per tile of 512 pixels
# of the image scaled to fit 2048 and then to 768 on its short side.
IMAGE_BASE_TOKENS = 85
IMAGE_TILE_TOKENS = 170
# An image whose size is not known (counting a request after the fact): a 1024 x 768 one's.
IMAGE_UNKNOWN_TOKENS = IMAGE_BASE_TOKENS + 6 * IMAGE_TILE_TOKENS


def image_tokens(width: int, height: int) -> int:
    if not width or not height:
        return IMAGE_UNKNOWN_TOKENS
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, 768 / min(width, height))
    width, height = width * scale, height * scale
    tiles = -(-int(width) // 512) * -(-int(height) // 512)
    return IMAGE_BASE_TOKENS + IMAGE_TILE_TOKENS * tiles


# An image part's URL until the reply is about to call the model: the stored file's name. The
# bytes are read then, out of any transaction (`attachments.with_images`).
STORED_IMAGE = "stored-attachment:"


@dataclass(frozen=True)
class AttachedFile:
    """What the model reads of a message's attachment: a text file's or PDF's text, or an
    image, stored as `stored` (its file's name in the storage)."""

    name: str
    kind: str
    text: str = ""
    width: int = 0
    height: int = 0
    stored: str = ""

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    def text_part(self) -> str:
        """A file's text, clearly delimited and named, as the model reads it."""
        name = self.name.replace('"', "'")
        return f'<file name="{name}">\n{self.text}\n</file>'

    def image_note(self) -> str:
        """Said instead of an image to a model that does not read images."""
        return f"[Image attached: {self.name}]"

    def tokens(self, model: str, accepts_images: bool) -> int:
        if self.is_image and accepts_images:
            return image_tokens(self.width, self.height)
        text = self.image_note() if self.is_image else self.text_part()
        return count_tokens(text, model)

    def part(self, accepts_images: bool) -> dict[str, Any]:
        if self.is_image and accepts_images and self.stored:
            return {"type": "image_url", "image_url": {"url": STORED_IMAGE + self.stored}}
        text = self.image_note() if self.is_image else self.text_part()
        return {"type": "text", "text": text}


@dataclass(frozen=True)
class HistoryItem:
    id: int
    role: str
    content: str
    attachments: tuple[AttachedFile, ...] = ()

    def tokens(self, model: str, accepts_images: bool) -> int:
        return message_tokens(self.content, model) + sum(
            attached.tokens(model, accepts_images) for attached in self.attachments
        )

    def message(self, accepts_images: bool) -> dict[str, Any]:
        """The message as the request carries it: its text alone, or, with attachments, a
        list of parts (its text first, then each attachment's)."""
        if not self.attachments:
            return {"role": self.role, "content": self.content}
        parts: list[dict[str, Any]] = []
        if self.content:
            parts.append({"type": "text", "text": self.content})
        parts.extend(attached.part(accepts_images) for attached in self.attachments)
        return {"role": self.role, "content": parts}


@dataclass(frozen=True)
class Context:
    messages: list[dict[str, Any]]
    context_from_id: int | None
    prompt_tokens: int


def select_context(
    *,
    system_prompt: str,
    history: list[HistoryItem],
    model: str,
    budget: int | None = None,
    accepts_images: bool = False,
) -> Context:
    """The system prompt plus the newest messages that fit `budget` tokens, oldest first.

    The system prompt and the newest message are always sent, even over budget: without them
    there is nothing to answer. Attachments count with their message; images go as image
    parts only to a model that `accepts_images` (to another, a line naming them).
    """
    budget = budget_for(model) if budget is None else budget
    used = REPLY_PRIMING
    system: list[dict[str, str]] = []
    if system_prompt:
        system = [{"role": "system", "content": system_prompt}]
        used += message_tokens(system_prompt, model)
    chosen: list[HistoryItem] = []
    for item in reversed(history):
        cost = item.tokens(model, accepts_images)
        if chosen and used + cost > budget:
            break
        chosen.append(item)
        used += cost
    chosen.reverse()
    return Context(
        messages=system + [item.message(accepts_images) for item in chosen],
        context_from_id=chosen[0].id if chosen else None,
        prompt_tokens=used,
    )
