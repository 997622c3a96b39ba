"""A streaming reply's text saved by time: every reply of a process in one batch per interval."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import llm, services
from conversations.models import Message, Role, Status

from .chat_client import ChatSocket, settle


@pytest.fixture
def talkers(make_user, personas, model_server):
    """Conversations of three different people."""
    return [services.start_conversation(user=make_user(f"talker-{i}")) for i in range(3)]


@pytest.mark.django_db
def test_a_reply_with_new_text_is_one_update_and_the_leases_of_the_rest_one(talkers):
    """Not one `bulk_update` of the texts: its CASE cost the ORM three times the CPU."""
    replies = [
        Message.objects.create(
            conversation=c, role=Role.ASSISTANT, status=Status.STREAMING, content="Half an ans"
        )
        for c in talkers
    ]
    ended = replies.pop()
    Message.objects.filter(pk=ended.pk).update(status=Status.COMPLETE, content="Final")
    until = timezone.now() + timedelta(seconds=30)
    saves = [
        services.Progress(replies[0].pk, 4, "Half an answer, 안녕"),
        services.Progress(replies[1].pk, 0, None),
        services.Progress(ended.pk, 9, "Late text"),
    ]
    with CaptureQueriesContext(connection) as queries:
        services.save_progress(saves, until)
    statements = [q["sql"] for q in queries.captured_queries if "UPDATE" in q["sql"]]
    assert len(statements) == 3
    assert not any("CASE" in statement for statement in statements)
    # Each row written once: the lease of a reply with new text goes with its text (on
    # PostgreSQL a second UPDATE of the row is a second new version of it).
    assert statements[2].endswith(f"IN ({replies[1].pk}))")
    text, lease, final = (Message.objects.get(pk=r.pk) for r in [*replies, ended])
    assert (text.content, text.seq, text.lease_expires_at) == ("Half an answer, 안녕", 4, until)
    assert (lease.content, lease.lease_expires_at) == ("Half an ans", until)
    assert (final.content, final.status) == ("Final", Status.COMPLETE)  # ended: untouched


def slow_model(tokens: list[str], gap: float):
    async def model_stream(request):
        for token in tokens:
            await asyncio.sleep(gap)
            yield llm.Delta(token)
        yield llm.Finished("stop", 3, len(tokens))

    return model_stream


@database_sync_to_async
def stored(reply_id: int) -> Message:
    return Message.objects.get(pk=reply_id)


async def reply_midway(user, conversation_id, pause: float) -> tuple[Message, dict]:
    """Send a message: its reply as stored `pause` seconds after its first delta, and its end."""
    async with ChatSocket(user, conversation_id) as socket:
        await socket.say("Hello")
        reply_id = (await socket.until("reply.delta"))["reply_id"]
        await asyncio.sleep(pause)
        midway = await stored(reply_id)
        return midway, await socket.until("reply.ended")


@pytest.mark.django_db(transaction=True)
async def test_replies_streaming_at_once_are_saved_together_by_time(talkers, monkeypatch, settings):
    settings.CHAT_FLUSH_SECONDS = 0.2
    monkeypatch.setattr(llm, "stream_reply", slow_model([f"w{i} " for i in range(40)], 0.03))
    batches: list[list[int]] = []
    save = services.save_progress

    def recording(saves, lease_expires_at):
        batches.append(sorted(s.reply_id for s in saves if s.content is not None))
        save(saves, lease_expires_at)

    monkeypatch.setattr(services, "save_progress", recording)
    sockets = [ChatSocket(c.user, c.pk) for c in talkers]
    for socket in sockets:
        await socket.__aenter__()
    try:
        started = time.monotonic()
        for socket in sockets:
            await socket.say("Tell me a story")
        reply_ids = [(await socket.until("reply.delta"))["reply_id"] for socket in sockets]
        await asyncio.sleep(0.5)
        midway = [await stored(reply_id) for reply_id in reply_ids]
        ends = [await socket.until("reply.ended") for socket in sockets]
        elapsed = time.monotonic() - started
    finally:
        for socket in sockets:
            await socket.__aexit__()
    await settle()
    for reply, socket in zip(midway, sockets, strict=True):
        assert reply.status == Status.STREAMING and reply.content  # saved while streaming
        assert socket.streamed_text(reply.pk).startswith(reply.content)
        assert reply.seq >= 1
    # One trip per interval for all of them, not one per reply.
    assert sorted(reply_ids) in batches
    assert len(batches) <= elapsed / 0.2 + 2
    assert all(end["message"]["status"] == Status.COMPLETE for end in ends)


@pytest.mark.django_db(transaction=True)
async def test_a_reply_waiting_for_its_next_token_keeps_its_lease(
    owner, conversation, monkeypatch, settings
):
    settings.CHAT_FLUSH_SECONDS = 0.1
    settings.CHAT_LEASE_SECONDS = 0.6  # renewed after 0.2 s without news

    async def pausing_model(request):
        yield llm.Delta("Thinking")
        await asyncio.sleep(1.2)  # two leases long
        yield llm.Delta(" done")
        yield llm.Finished("stop", 3, 2)

    monkeypatch.setattr(llm, "stream_reply", pausing_model)
    waiting, ended = await reply_midway(owner, conversation.pk, pause=0.9)
    assert waiting.status == Status.STREAMING and waiting.content == "Thinking"
    assert waiting.lease_expires_at > timezone.now()  # renewed: never swept as orphaned
    assert ended["message"]["status"] == Status.COMPLETE
    assert ended["message"]["content"] == "Thinking done"


@pytest.mark.django_db(transaction=True)
async def test_a_failed_save_is_made_good_by_the_next(owner, conversation, monkeypatch, settings):
    settings.CHAT_FLUSH_SECONDS = 0.1
    monkeypatch.setattr(llm, "stream_reply", slow_model([f"w{i} " for i in range(30)], 0.03))
    save = services.save_progress
    failures = []

    def failing_once(saves, lease_expires_at):
        if not failures:
            failures.append(1)
            raise RuntimeError("the database went away for a moment")
        save(saves, lease_expires_at)

    monkeypatch.setattr(services, "save_progress", failing_once)
    midway, ended = await reply_midway(owner, conversation.pk, pause=0.45)
    assert failures
    assert midway.status == Status.STREAMING and midway.content
    assert ended["message"]["status"] == Status.COMPLETE
