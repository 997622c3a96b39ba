"""Reading the parts of a chat-completions request the simulated answer has to reflect.

The simulator's answers exist to prove, in tests, that context reached the model: the
system prompt, the last user message, an earlier user message and the message count, and
what the last user message attached: its images (decoded, to tell their sizes) and its files
(text parts of the form ``<file name="...">...</file>``, to quote them). This module pulls
exactly those facts out of an OpenAI ``messages`` array (string or content-part messages
alike), with ``[[sim:...]]`` directives removed from quoted text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .directives import strip_directives

_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
_HANGUL_SYLLABLE = re.compile(r"[\uac00-\ud7a3]")
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s|\n")
_HEADING_LIMIT = 80
_EARLIER_LIMIT = 60
_QUOTE_LIMIT = 80
_FILE_PART = re.compile(r'\A<file name="([^"]*)">\n(.*)\n</file>\Z', re.DOTALL)
_DATA_URL = re.compile(r"\Adata:image/[\w.+-]+;base64,(.*)\Z", re.DOTALL)


def _text_parts(message: Mapping[str, Any]) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    return [
        str(part.get("text", ""))
        for part in content
        if isinstance(part, Mapping) and part.get("type") in ("text", "input_text")
    ]


def own_text(message: Mapping[str, Any]) -> str:
    """The text the person wrote: the message's text without the files it carries."""
    return "\n".join(text for text in _text_parts(message) if not _FILE_PART.match(text))


def attached_files(message: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The files a message carries as text parts: (name, text) each."""
    found = (_FILE_PART.match(text) for text in _text_parts(message))
    return [(match.group(1), match.group(2)) for match in found if match]


def image_urls(message: Mapping[str, Any]) -> list[str]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    urls = []
    for part in content:
        if isinstance(part, Mapping) and part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else None
            urls.append(url if isinstance(url, str) else "")
    return urls


def image_size(url: str) -> tuple[int, int] | None:
    """The pixel size of a data-URL image, from its header; None when it is not one."""
    from PIL import Image, UnidentifiedImageError

    match = _DATA_URL.match(url)
    if match is None:
        return None
    try:
        data = base64.b64decode(match.group(1), validate=True)
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (binascii.Error, ValueError, OSError, UnidentifiedImageError, SyntaxError):
        return None


def quote_of(text: str) -> str:
    """What the simulator quotes of a file: its first line with text, cut."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(line) > _QUOTE_LIMIT:
        line = line[: _QUOTE_LIMIT - 1].rstrip() + "…"
    return line


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one message: a plain string, or the ``text`` parts of a content list."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") in ("text", "input_text")
        ]
        return "\n".join(parts)
    return ""


def contains_hangul(text: str) -> bool:
    """True when the text has any Hangul (syllables or jamo): the answer is then Korean."""
    return _HANGUL.search(text) is not None


def estimate_tokens(text: str) -> int:
    """Rough token count: one per Hangul syllable, one per ~4 other characters.

    Real tokenizers need vocabulary files we cannot download offline; this estimate is
    close enough for usage numbers that must merely be plausible and stable.
    """
    hangul = len(_HANGUL_SYLLABLE.findall(text))
    return hangul + math.ceil((len(text) - hangul) / 4)


def estimate_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """``prompt_tokens`` for usage: per message 4 tokens of framing plus its text, +3 priming.

    That mirrors how OpenAI counts chat prompts (role/separator tokens per message and the
    assistant primer), with :func:`estimate_tokens` standing in for the real tokenizer.
    """
    total = 3
    for message in messages:
        total += 4 + estimate_tokens(message_text(message))
        name = message.get("name")
        if isinstance(name, str):
            total += 1 + estimate_tokens(name)
    return total


def _first_sentence(text: str) -> str:
    collapsed = text.strip()
    sentence = _SENTENCE_END.split(collapsed, maxsplit=1)[0].strip()
    sentence = re.sub(r"\s+", " ", sentence).rstrip(".!?。 ")
    if len(sentence) > _HEADING_LIMIT:
        sentence = sentence[: _HEADING_LIMIT - 1].rstrip() + "…"
    return sentence


@dataclass(frozen=True)
class Conversation:
    """The facts of a request the answer reflects.

    - ``persona``: first sentence of the first system/developer message (trailing
      punctuation dropped, capped at 80 characters), ``None`` without a system prompt.
    - ``question``: the last user message, verbatim, directives removed.
    - ``earlier``: the user message before that, first 60 characters, or ``None``.
    - ``message_count``: all messages of the request, any role.
    - ``raw_last_user``: the last user message as sent (directives still in it).
    """

    persona: str | None
    question: str
    earlier: str | None
    message_count: int
    raw_last_user: str
    digest: int
    # The last user message's images ("W×H" each) and files ((name, quote) each).
    images: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = ()

    @property
    def korean(self) -> bool:
        return contains_hangul(self.question)

    @classmethod
    def from_messages(cls, messages: Sequence[Mapping[str, Any]]) -> Conversation:
        system = next(
            (message_text(m) for m in messages if m.get("role") in ("system", "developer")),
            None,
        )
        user_messages = [m for m in messages if m.get("role") == "user"]
        users = [own_text(m) for m in user_messages]
        last = user_messages[-1] if user_messages else {}
        sizes = [image_size(url) for url in image_urls(last)]
        images = tuple(f"{size[0]}×{size[1]}" if size else "?" for size in sizes)
        files = tuple((name, quote_of(text)) for name, text in attached_files(last))
        raw_last = users[-1] if users else ""
        earlier = strip_directives(users[-2])[:_EARLIER_LIMIT] if len(users) >= 2 else None
        persona = _first_sentence(strip_directives(system)) if system else None
        canonical = json.dumps(
            [[m.get("role"), message_text(m)] for m in messages], ensure_ascii=False
        )
        digest = int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")
        return cls(
            persona=persona or None,
            question=strip_directives(raw_last),
            earlier=earlier,
            message_count=len(messages),
            raw_last_user=raw_last,
            digest=digest,
            images=images,
            files=files,
        )
