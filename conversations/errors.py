"""The one error type the chat's entry points turn into a clear message for the user."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ChatError(Exception):
    code: str
    message: str
    client_id: str | None = None

    def __str__(self) -> str:
        return self.message
