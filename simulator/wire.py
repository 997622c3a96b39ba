"""The JSON objects OpenAI sends: ``chat.completion`` and ``chat.completion.chunk``.

Kept free of I/O so the exact shapes (which the SDK parses and the app under test relies on)
live in one readable place. Every chunk of one completion shares ``id``, ``created``,
``model`` and ``system_fingerprint``, as OpenAI's do.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from .engine import Completion
from .tokens import Token

SYSTEM_FINGERPRINT = "fp_sim"
_ID_ALPHABET = string.ascii_letters + string.digits


def new_completion_id() -> str:
    return "chatcmpl-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(29))


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def token_logprob(token: Token) -> dict[str, Any]:
    """One entry of ``logprobs.content``: the token, its logprob, bytes and alternatives."""
    return {
        "token": token.text,
        "logprob": token.logprob,
        "bytes": list(token.text.encode("utf-8")),
        "top_logprobs": [
            {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}
            for text, logprob in token.top_logprobs
        ],
    }


@dataclass(frozen=True)
class Envelope:
    """The identity one completion's response (or all of its chunks) carries."""

    model: str
    id: str = field(default_factory=new_completion_id)
    created: int = field(default_factory=lambda: int(time.time()))

    def _head(self, kind: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

    def completion(
        self,
        completion: Completion,
        *,
        tokens: int,
        finish_reason: str | None,
        include_logprobs: bool,
        include_usage: bool = True,
    ) -> dict[str, Any]:
        """A non-streamed ``chat.completion`` with the first ``tokens`` tokens as content."""
        emitted = completion.tokens[:tokens]
        logprobs = None
        if include_logprobs:
            logprobs = {"content": [token_logprob(t) for t in emitted], "refusal": None}
        return {
            **self._head("chat.completion"),
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "".join(t.text for t in emitted),
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": logprobs,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage(completion.prompt_tokens, len(emitted)) if include_usage else None,
        }

    def chunk(
        self,
        *,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        logprobs: dict[str, Any] | None = None,
        with_usage_field: bool = False,
    ) -> dict[str, Any]:
        """A ``chat.completion.chunk`` with one choice; ``usage: null`` when usage is on."""
        chunk: dict[str, Any] = {
            **self._head("chat.completion.chunk"),
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "logprobs": logprobs,
                    "finish_reason": finish_reason,
                }
            ],
        }
        if with_usage_field:
            chunk["usage"] = None
        return chunk

    def role_chunk(self, *, with_usage_field: bool) -> dict[str, Any]:
        return self.chunk(
            delta={"role": "assistant", "content": "", "refusal": None},
            with_usage_field=with_usage_field,
        )

    def token_chunk(
        self, token: Token, *, include_logprobs: bool, with_usage_field: bool
    ) -> dict[str, Any]:
        logprobs = None
        if include_logprobs:
            logprobs = {"content": [token_logprob(token)], "refusal": None}
        return self.chunk(
            delta={"content": token.text}, logprobs=logprobs, with_usage_field=with_usage_field
        )

    def finish_chunk(self, finish_reason: str, *, with_usage_field: bool) -> dict[str, Any]:
        return self.chunk(delta={}, finish_reason=finish_reason, with_usage_field=with_usage_field)

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        """The final chunk of ``stream_options.include_usage``: no choices, only usage."""
        return {
            **self._head("chat.completion.chunk"),
            "choices": [],
            "usage": usage(prompt_tokens, completion_tokens),
        }
