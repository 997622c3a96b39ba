"""Reading the parts of a chat-completions request the simulated answer has to reflect.

The simulator's answers exist to prove, in tests, that context reached the model: the
system prompt, the last user message, an earlier user message and the message count. This
module pulls exactly those facts out of an OpenAI ``messages`` array (string or
content-part messages alike), with ``[[sim:...]]`` directives removed from quoted text.
"""

from __future__ import annotations

import hashlib
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

    @property
    def korean(self) -> bool:
        return contains_hangul(self.question)

    @classmethod
    def from_messages(cls, messages: Sequence[Mapping[str, Any]]) -> Conversation:
        system = next(
            (message_text(m) for m in messages if m.get("role") in ("system", "developer")),
            None,
        )
        users = [message_text(m) for m in messages if m.get("role") == "user"]
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
        )
