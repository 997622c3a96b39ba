"""An import's write: conversations checked by `exports.parse_import`, stored in the importing
user's account without holding up anyone else.

A file may hold `exports.MAX_IMPORT_MESSAGES` messages. Stored in one transaction, they held
SQLite's one write lock for as long as that took, and every other user's message waited
behind it. Here they are stored in pieces of `CHUNK_ROWS`, each its own short transaction; on
SQLite each piece takes its turn on the one thread where the chat sockets' database work runs
(`database.in_database`), so a message sent meanwhile waits for one piece at most, not for
the whole file nor for SQLite's busy back-off. On PostgreSQL, whose writers do not share a
lock, the pieces are stored from the request's own thread. Between pieces the import pauses
as long as the last one took, leaving others at least half of the time.

The conversations stay hidden (`Conversation.importing`) until the last piece is stored, then
appear together. If storing fails half-way, what was stored is deleted; what a process that
died meanwhile left hidden is deleted by its user's next import.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection, transaction
from django.utils import timezone

from . import attachments, database
from .models import Conversation, Message

if TYPE_CHECKING:
    from .exports import ImportedConversation

logger = logging.getLogger(__name__)

# Messages per transaction: on SQLite a piece of 250 takes 20 to 30 milliseconds. Fewer when
# they are long (logprobs are the bulk of a reply's row): a piece holds about CHUNK_CHARS.
CHUNK_ROWS = 250
CHUNK_CHARS = 256 * 1024
# After each piece the import waits this many times as long as the piece took, so it has at
# most half of the database thread (and of the interpreter), and what others send meanwhile
# goes first: bulk work that makes way for interactive work, as PostgreSQL's cost-based vacuum
# delay does. A file at the caps is stored in about 4 s instead of 2; meanwhile the victim's
# replies in tests/hardening/test_import_does_not_stall_others.py take 1 to 1.5 times their
# idle time instead of 2 to 4.
PAUSE_PER_PIECE = 1.0
# A hidden conversation not revealed within this long was left by an import that died.
ABANDONED_AFTER = timedelta(hours=1)

T = TypeVar("T")


def import_conversations(
    *, user: Any, conversations: list[ImportedConversation]
) -> list[Conversation]:
    """Store checked conversations in `user`'s account, whoever's account they came from.

    They appear all at once when everything is stored, or not at all.
    """
    _run(_delete_abandoned, user)
    created: list[Conversation] = []
    try:
        for item in conversations:
            conversation = _run(_start, user, item)
            created.append(conversation)
            stored_ids: list[int] = []  # the new id of each message of the file, in order
            for piece in _pieces(item.messages):
                started = time.monotonic()
                _run(_store_messages, conversation, piece, stored_ids)
                time.sleep((time.monotonic() - started) * PAUSE_PER_PIECE)
        _run(_reveal, created, [item.updated_at for item in conversations])
    except BaseException:
        try:
            _run(_delete, created)
        except Exception:
            # The failure that stopped the import may stop this too (the database is gone):
            # the rows stay hidden, and the user's next import deletes them.
            logger.exception("an import that failed left %d hidden conversations", len(created))
        raise
    return created


def _run(function: Callable[..., T], *args: Any) -> T:
    """Run one of the import's transactions where it waits least on others' writes, and they
    on it."""
    if database.side_by_side():
        return function(*args)
    return async_to_sync(_on_database_thread)(function, *args)


async def _on_database_thread(function: Callable[..., T], *args: Any) -> T:
    # A context of its own: the request's (asgiref's thread-sensitive context) would send the
    # call back to the request's own thread, to wait on SQLite's lock beside the sockets'
    # writes instead of taking its turn among them. `replies` starts its tasks the same way.
    # Plain `sync_to_async`: channels' wrapper would close the connection of a caller that
    # has no event loop of its own (a command, a test), as it runs in the caller's thread.
    loop = asyncio.get_running_loop()
    task = loop.create_task(
        sync_to_async(function, thread_sensitive=True)(*args), context=contextvars.Context()
    )
    return await task


def _pieces(messages: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """The messages in pieces of at most CHUNK_ROWS, and about CHUNK_CHARS characters."""
    piece: list[dict[str, Any]] = []
    chars = 0
    for fields in messages:
        files = fields.get("attachments") or ()
        text = {name: value for name, value in fields.items() if name != "attachments"}
        size = len(json.dumps(text, default=str)) + sum(len(file.data) for file in files)
        if piece and (len(piece) == CHUNK_ROWS or chars + size > CHUNK_CHARS):
            yield piece
            piece, chars = [], 0
        piece.append(fields)
        chars += size
    if piece:
        yield piece


def _start(user: Any, item: ImportedConversation) -> Conversation:
    now = timezone.now()
    conversation = Conversation(
        user=user,
        persona=item.persona,
        title=item.title,
        pinned=item.pinned,
        created_at=item.created_at or now,
        updated_at=now,
        importing=True,
        **item.settings,
    )
    with transaction.atomic():
        conversation.save(force_insert=True)
    return conversation


def _store_messages(
    conversation: Conversation, messages: list[dict[str, Any]], stored_ids: list[int]
) -> None:
    """A piece of the file's messages, then their parents (`parent_index`: an earlier
    message of the file, stored before or in this piece): two statements."""
    rows, parents, files = [], [], []
    for fields in messages:
        fields = dict(fields)
        parents.append(fields.pop("parent_index"))
        files.append(fields.pop("attachments", None) or [])
        rows.append(Message(conversation=conversation, imported=True, **fields))
    with transaction.atomic():
        Message.objects.bulk_create(rows)
        stored_ids.extend(row.pk for row in rows)
        links = [
            (stored_ids[parent], row.pk)
            for row, parent in zip(rows, parents, strict=True)
            if parent is not None
        ]
        if links:
            # One prepared UPDATE run for every row: `bulk_update` builds a CASE of one WHEN
            # per row, and made each piece about four times as long (31 to 113 ms on SQLite),
            # holding everyone else's writes that much longer.
            table = connection.ops.quote_name(Message._meta.db_table)
            with connection.cursor() as cursor:
                cursor.executemany(f"UPDATE {table} SET parent_id = %s WHERE id = %s", links)
        for row, checked in zip(rows, files, strict=True):
            for file in checked:
                attachments.store(conversation=conversation, checked=file, message=row)


def _reveal(conversations: list[Conversation], last_active: list[Any]) -> None:
    """Show them, each at its last activity as the file says (a history brought here sorts
    as it did there), or at now when it says none. Until then each is `importing` at now: an
    import still running is not one that died (`_delete_abandoned`)."""
    now = timezone.now()
    for conversation, moment in zip(conversations, last_active, strict=True):
        conversation.importing, conversation.updated_at = False, moment or now
    with transaction.atomic():
        Conversation.objects.bulk_update(conversations, ["importing", "updated_at"])


def _delete(conversations: list[Conversation]) -> None:
    # One conversation (at most `exports.MAX_MESSAGES` rows) per transaction.
    for conversation in conversations:
        with transaction.atomic():
            Conversation.objects.filter(pk=conversation.pk, importing=True).delete()


def _delete_abandoned(user: Any) -> None:
    abandoned = Conversation.objects.filter(
        user=user, importing=True, updated_at__lt=timezone.now() - ABANDONED_AFTER
    )
    _delete(list(abandoned.only("pk")))
