"""Many sockets at once: what keeps a surge of connects, messages and streams cheap."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
from channels.db import database_sync_to_async
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from conversations import llm, replies, services
from conversations.accounts import user_group
from conversations.errors import ChatError
from conversations.models import Status

from .chat_client import ChatSocket, half_written_reply, settle

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_tokens_that_come_while_a_delta_is_not_due_are_read_together(
    owner, conversation, monkeypatch, settings
):
    settings.CHAT_DELTA_SECONDS = 0.2
    first_sent_at = 0.0
    asked_at: list[float] = []  # when the reader asked for each token after the second

    async def model_stream(request):
        nonlocal first_sent_at
        await asyncio.sleep(0.05)  # the first token is waited for, and goes out at once
        first_sent_at = time.monotonic()
        yield llm.Delta("First ")
        await asyncio.sleep(0.05)  # so is the second, while the next delta is not due
        yield llm.Delta("second ")
        for word in ["third ", "fourth"]:  # these were already buffered
            asked_at.append(time.monotonic())
            yield llm.Delta(word)
        asked_at.append(time.monotonic())
        yield llm.Finished("stop", 3, 4)

    monkeypatch.setattr(llm, "stream_reply", model_stream)
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Hello")
        first = await socket.until("reply.delta")
        ended = await socket.until("reply.ended")
    assert first["text"] == "First "
    # After a token it had to wait for, the reader waited for the next delta to be due...
    assert asked_at[0] - first_sent_at >= 0.15
    # ...then took what had arrived meanwhile, and the stream's end, without waiting.
    assert asked_at[-1] - asked_at[0] < 0.1
    assert [d["text"] for d in socket.of_type("reply.delta")] == ["First ", "second third fourth"]
    assert ended["message"]["content"] == "First second third fourth"
    assert ended["message"]["status"] == Status.COMPLETE


class Tab:
    """A socket of this process in a group, as `replies.listen` sees one."""

    def __init__(self) -> None:
        self.handed: asyncio.Queue[list[dict]] = asyncio.Queue()

    async def group_frames(self, frames: list[dict]) -> None:
        self.handed.put_nowait(frames)


async def test_a_reply_start_reaches_the_group_as_one_message(owner, conversation):
    """The messages to the conversation's tabs together; its first title to every tab of its
    owner, whose sidebars all list it."""
    tab, sidebar = Tab(), Tab()
    replies.listen(replies.group_name(conversation.pk), tab)
    replies.listen(user_group(owner.pk), sidebar)
    try:
        prepared = await replies.post(
            user=owner, conversation_id=conversation.pk, content="Hi there", client_id="one"
        )
        first = await asyncio.wait_for(tab.handed.get(), 5)
        titled = await asyncio.wait_for(sidebar.handed.get(), 5)
        await settle()
    finally:
        replies.stop_listening(replies.group_name(conversation.pk), tab)
        replies.stop_listening(user_group(owner.pk), sidebar)
    assert [(f["type"], f["message"]["id"]) for f in first] == [
        ("message.created", prepared.created[0].pk),
        ("message.created", prepared.reply.pk),
    ]
    assert [f["type"] for f in titled] == ["conversation.updated"]
    assert titled[0]["conversation"]["title"] == "Hi there"


async def test_a_socket_forwards_each_frame_of_a_group_message(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Hi there")
        await socket.until("reply.ended")
    kinds = [frame["type"] for frame in socket.frames]
    assert kinds[:4] == ["ready", "message.created", "message.created", "conversation.updated"]


async def test_ready_is_sent_once_the_connect_has_looked_for_a_streaming_reply(
    owner, conversation, monkeypatch
):
    looked = threading.Event()
    original = services.opened

    def slow_look(*args, **kwargs):
        time.sleep(0.2)
        looked.set()
        return original(*args, **kwargs)

    monkeypatch.setattr(services, "opened", slow_look)
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        assert looked.is_set()


async def test_looking_for_a_streaming_reply_is_one_read_when_none_is_orphaned(conversation):
    live = await half_written_reply(conversation, lease_seconds=30)

    def look():
        with CaptureQueriesContext(connections["default"]) as queries:
            found = services.streaming_reply(conversation.pk)
        return found, queries

    found, queries = await database_sync_to_async(look)()
    assert found.pk == live.pk and found.status == Status.STREAMING
    assert len(queries) == 1 and queries[0]["sql"].startswith("SELECT")


async def test_a_socket_opening_reads_its_conversation_and_no_reply_in_one_statement(
    owner, conversation
):
    def open_it():
        with CaptureQueriesContext(connections["default"]) as queries:
            opened = services.opened(user=owner, conversation_id=conversation.pk)
        return opened, queries

    (found, streaming), queries = await database_sync_to_async(open_it)()
    assert found.pk == conversation.pk and streaming is None
    assert len(queries) == 1
    live = await half_written_reply(conversation, lease_seconds=30)
    (_found, streaming), _queries = await database_sync_to_async(open_it)()
    assert streaming.pk == live.pk


async def test_a_socket_opening_sweeps_an_orphaned_reply(owner, conversation):
    orphan = await half_written_reply(conversation, lease_seconds=None)
    _found, streaming = await database_sync_to_async(services.opened)(
        user=owner, conversation_id=conversation.pk
    )
    assert streaming is None
    await database_sync_to_async(orphan.refresh_from_db)()
    assert orphan.status == Status.INTERRUPTED


async def test_looking_for_a_streaming_reply_sweeps_an_orphan_first(conversation):
    orphan = await half_written_reply(conversation, lease_seconds=None)
    assert await database_sync_to_async(services.streaming_reply)(conversation.pk) is None
    await database_sync_to_async(orphan.refresh_from_db)()
    assert orphan.status == Status.INTERRUPTED and orphan.content == "Half an ans"


def test_batches_stored_at_once_hold_the_limits_of_the_users_they_share(
    make_user, personas, model_server, settings
):
    # Batches stored side by side (several on PostgreSQL) lock their owners' rows in one
    # order: none waits for another forever, and each sees what the other stored.
    settings.CHAT_MAX_CONCURRENT_REPLIES = 1
    people = [make_user(f"shared-{i}") for i in range(3)]
    batches = [
        [
            services.Post(
                person, services.start_conversation(user=person).pk, "Hi", uuid.uuid4().hex
            )
            for person in (people if n % 2 else reversed(people))
        ]
        for n in range(4)
    ]
    results: list[services.PreparedReply | Exception] = []
    lock = threading.Lock()

    def store(posts):
        outcome = services.post_messages(posts)
        connection.close()
        with lock:
            results.extend(outcome)

    threads = [threading.Thread(target=store, args=(posts,)) for posts in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    stored = [r for r in results if isinstance(r, services.PreparedReply)]
    refused = [r for r in results if isinstance(r, ChatError)]
    assert len(results) == 12 and len(stored) == 3 and len(refused) == 9
    assert {r.code for r in refused} == {"too_many_replies"}
    assert sorted(p.conversation.user_id for p in stored) == sorted(p.pk for p in people)
