"""Database calls from async code, side by side where the database allows it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings


def side_by_side() -> bool:
    """Whether database work may run in several threads at once: not on SQLite, one writer."""
    return settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3"


def in_database(function: Callable[..., Any]) -> Callable[..., Any]:
    """`database_sync_to_async`, in a thread of its own where the database has room for it.

    On PostgreSQL many sockets at once (a surge of connects, of sent messages) use several
    pooled connections instead of queueing behind one thread. SQLite has one writer: threads
    would only wait on its lock (with its coarse busy back-off), so there the calls stay on
    channels' one database thread.
    """
    return database_sync_to_async(function, thread_sensitive=not side_by_side())
