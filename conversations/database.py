"""Database calls from async code, on the process's one database thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings


def side_by_side() -> bool:
    """Whether database work runs in several threads at once: only when `CHAT_DATABASE_THREADS`
    asks for it, and never on SQLite (one writer)."""
    return (
        settings.CHAT_DATABASE_THREADS
        and settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3"
    )


def in_database(function: Callable[..., Any]) -> Callable[..., Any]:
    """`database_sync_to_async`, on channels' one database thread of the process.

    Python runs one thread at a time: database threads side by side on PostgreSQL spent the
    event loop's core on the ORM's work and made the loop wait for it at each of its socket
    reads and writes (one process at 25 replies a second: first tokens 14 s late instead of
    2 s, docs/benchmarks.md). SQLite has one writer anyway: threads would only wait on its
    lock. `CHAT_DATABASE_THREADS` puts the threads back on PostgreSQL, for the benchmark.
    """
    return database_sync_to_async(function, thread_sensitive=not side_by_side())
