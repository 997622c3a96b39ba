"""Log lines for stdout: one event, one line, and no secret in it.

A traceback or a message with line breaks would otherwise spread one event over many lines,
which a log collector reading stdout splits into unrelated events. The breaks are written as
the two characters `\\n`, so the whole event stays on its line and can still be read back.

The model's API key is replaced by `[redacted]` wherever it would appear. The app never logs
it (a test checks the raw records); this is the second line of defence, for a library that
might.
"""

from __future__ import annotations

import logging
from typing import Any

REDACTED = "[redacted]"


def secrets_to_hide() -> list[str]:
    """The values no log line may contain: read at each event, so a changed setting counts."""
    from django.conf import settings

    if not settings.configured:
        return []
    key = getattr(settings, "OPENAI_API_KEY", "")
    # A very short "key" (`unused` for a local server that wants any) is not a secret.
    return [key] if len(key) >= 8 else []


class OneLineFormatter(logging.Formatter):
    """`fold=False` (development, DJANGO_DEBUG=1) keeps tracebacks on their lines for reading
    in a terminal; the key is hidden either way."""

    def __init__(self, *args: Any, fold: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fold = fold

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in secrets_to_hide():
            text = text.replace(secret, REDACTED)
        return text.replace("\r", "").replace("\n", "\\n") if self.fold else text
