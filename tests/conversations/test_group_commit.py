"""Group commit: the messages of several senders stored in one transaction, each answered as if
it had been sent alone."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import database, replies, services
from conversations.errors import ChatError
from conversations.models import Message, Role, Status
from conversations.services import Post, post_messages

from .chat_client import ChatSocket, half_written_reply, settle


def posts_of(conversations, content="Hello", **extra) -> list[Post]:
    return [
        Post(c.user, c.pk, content, uuid.uuid4().hex, "replies.test", **extra)
        for c in conversations
    ]


@pytest.fixture
def senders(make_user, personas, model_server):
    """Conversations of ten different people."""
    return [services.start_conversation(user=make_user(f"sender-{i}")) for i in range(10)]


@pytest.mark.django_db
def test_each_post_of_a_batch_stores_its_message_and_its_reply(senders):
    results = post_messages(posts_of(senders, "Tell me about kimchi"))
    assert all(isinstance(r, services.PreparedReply) and r.is_new for r in results)
    for conversation, prepared in zip(senders, results, strict=True):
        message, reply = Message.objects.filter(conversation=conversation)
        assert message.role == Role.USER and message.content == "Tell me about kimchi"
        assert reply.pk == prepared.reply.pk and reply.status == Status.STREAMING
        assert reply.context_from_id == message.pk
        assert prepared.request["messages"][-1] == {
            "role": "user",
            "content": "Tell me about kimchi",
        }
        conversation.refresh_from_db()
        assert conversation.title == "Tell me about kimchi"
        assert prepared.titled


@pytest.mark.django_db
def test_a_batch_takes_the_same_statements_however_many_posts_it_holds(senders):
    post_messages(posts_of(senders[:1]))  # the process reads the admin's small tables once
    with CaptureQueriesContext(connection) as two:
        post_messages(posts_of(senders[1:3]))
    with CaptureQueriesContext(connection) as seven:
        post_messages(posts_of(senders[3:]))
    # The lock, two reads of the limits (streaming replies, calls of the minute), the
    # histories, three inserts (messages, model calls, replies), the conversations' titles
    # and update times, and the transaction's own two statements. What a resent frame stored
    # is read only for a post the limits refuse; the quotas and the context windows are held
    # by the process (`snapshots`).
    assert len(seven) == len(two) == 10, [q["sql"][:60] for q in two.captured_queries]


@pytest.mark.django_db
def test_a_message_alone_titles_its_conversation_without_a_case(senders):
    """`bulk_update`'s CASE of one row cost the ORM five times a plain UPDATE on SQLite."""
    with CaptureQueriesContext(connection) as alone:
        post_messages(posts_of(senders[:1], "Tell me about kimchi"))
    updates = [q["sql"] for q in alone.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1 and "CASE" not in updates[0] and '"title"' in updates[0]
    senders[0].refresh_from_db()
    assert senders[0].title == "Tell me about kimchi"


@pytest.mark.django_db
def test_a_refused_post_does_not_stop_the_others(senders, outsider):
    posts = posts_of(senders[:3])
    posts[0] = Post(senders[0].user, senders[0].pk, "   ", "empty")
    posts[1] = Post(outsider, senders[1].pk, "Not mine", "theirs")
    results = post_messages(posts)
    assert isinstance(results[0], ChatError) and results[0].code == "empty_message"
    assert isinstance(results[1], ChatError) and results[1].code == "not_found"
    assert isinstance(results[2], services.PreparedReply)
    assert not Message.objects.filter(conversation__in=senders[:2]).exists()
    assert Message.objects.filter(conversation=senders[2]).count() == 2


@pytest.mark.django_db
def test_a_users_second_post_in_a_batch_counts_the_first_against_the_limits(
    owner, personas, model_server, settings
):
    settings.CHAT_MAX_CONCURRENT_REPLIES = 1
    mine = [services.start_conversation(user=owner) for _ in range(2)]
    first, second = post_messages(posts_of(mine))
    assert isinstance(first, services.PreparedReply)
    assert isinstance(second, ChatError) and second.code == "too_many_replies"
    assert not Message.objects.filter(conversation=mine[1]).exists()


@pytest.mark.django_db
def test_the_rate_limit_counts_the_messages_of_the_same_batch(
    owner, personas, model_server, settings
):
    settings.CHAT_MESSAGES_PER_MINUTE = 2
    mine = [services.start_conversation(user=owner) for _ in range(3)]
    results = post_messages(posts_of(mine))
    assert [type(r).__name__ for r in results] == ["PreparedReply", "PreparedReply", "ChatError"]
    assert results[2].code == "rate_limited"


@pytest.mark.django_db
def test_two_posts_to_one_conversation_in_a_batch_start_one_reply(senders):
    conversation = senders[0]
    again, other = posts_of([conversation, conversation])
    resent = Post(again.user, again.conversation_id, again.content, again.client_id, "x")
    first, repeated, busy = post_messages([again, resent, other])
    assert isinstance(first, services.PreparedReply) and first.is_new
    assert isinstance(repeated, services.PreparedReply) and not repeated.is_new
    assert [m.pk for m in repeated.created] == [m.pk for m in first.created]
    assert isinstance(busy, ChatError) and busy.code == "reply_in_progress"
    assert Message.objects.filter(conversation=conversation).count() == 2


@pytest.mark.django_db
def test_a_frame_stored_by_an_earlier_batch_is_answered_with_what_it_stored(senders):
    post = posts_of(senders[:1])[0]
    (first,) = post_messages([post])
    (again,) = post_messages([post])
    assert not again.is_new and [m.pk for m in again.created] == [m.pk for m in first.created]
    assert Message.objects.filter(conversation=senders[0]).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_hits_a_stored_client_id_is_stored_again_post_by_post(senders):
    # A frame resent after its answer ended passes the limits like a new message (what it
    # stored is read only for a refused post): the insert fails on the unique client id, and
    # the batch is stored again one post at a time, the resent frame getting what it stored.
    stored = posts_of(senders[:1])[0]
    post_messages([stored])
    Message.objects.filter(status=Status.STREAMING).update(status=Status.COMPLETE)
    fresh = posts_of(senders[1:2])[0]
    replayed, new = post_messages([stored, fresh])
    assert not replayed.is_new and new.is_new
    assert Message.objects.filter(conversation=senders[0]).count() == 2
    assert Message.objects.filter(conversation=senders[1]).count() == 2


@pytest.mark.django_db
def test_each_refusal_speaks_its_senders_language(senders):
    posts = [
        Post(senders[0].user, senders[0].pk, " ", "a", language="ko"),
        Post(senders[1].user, senders[1].pk, " ", "b", language="en"),
    ]
    korean, english = post_messages(posts)
    assert english.message == "The message is empty."
    assert korean.message != english.message and "메시지" in korean.message


# Through the socket and the reply runner.


@pytest.mark.django_db(transaction=True)
async def test_sockets_sending_at_once_are_stored_together(senders, monkeypatch):
    batches = []
    original = services.post_messages

    def counting(posts):
        batches.append(len(posts))
        return original(posts)

    monkeypatch.setattr(services, "post_messages", counting)
    sockets = [ChatSocket(c.user, c.pk) for c in senders]
    for socket in sockets:
        await socket.__aenter__()
        await socket.until("ready")
    try:
        await asyncio.gather(*(s.say(f"Question {i}") for i, s in enumerate(sockets)))
        ended = await asyncio.gather(*(s.until("reply.ended") for s in sockets))
    finally:
        for socket in sockets:
            await socket.__aexit__()
    await settle()
    assert sum(batches) == len(senders) and len(batches) < len(senders)
    for i, frame in enumerate(ended):
        assert frame["message"]["status"] == Status.COMPLETE
        assert f"Question {i}" in frame["message"]["content"]


@pytest.mark.django_db(transaction=True)
async def test_a_stored_message_gets_its_reply_even_when_its_sender_is_gone(senders, monkeypatch):
    conversation = senders[0]
    storing, go_on = threading.Event(), threading.Event()
    original = services.post_messages

    def held(posts):
        storing.set()
        go_on.wait(5)
        return original(posts)

    monkeypatch.setattr(services, "post_messages", held)
    sender = asyncio.create_task(
        replies.post(
            user=conversation.user,
            conversation_id=conversation.pk,
            content="Are you still there?",
            client_id="gone",
        )
    )
    assert await asyncio.to_thread(storing.wait, 5)
    sender.cancel()  # its socket closed while the batch was being stored
    with pytest.raises(asyncio.CancelledError):
        await sender
    go_on.set()
    for _ in range(200):
        if replies.running_replies():
            break
        await asyncio.sleep(0.01)
    await replies.wait_for_replies()
    messages = await database_sync_to_async(list)(conversation.messages.all())
    assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT]
    assert messages[1].status == Status.COMPLETE
    assert "Are you still there?" in messages[1].content


@pytest.mark.django_db(transaction=True)
async def test_a_message_queued_as_the_last_worker_finishes_is_stored(senders):
    # The callbacks of the last future a worker resolves run after that worker has looked at
    # the queue for the last time: a message queued then must start a worker of its own.
    queue = replies.post_queue()
    first, second = posts_of(senders[:2], "Who is next?")
    late: list[asyncio.Future] = []
    stored = queue.put(first)
    stored.add_done_callback(lambda _: late.append(queue.put(second)))
    await stored
    prepared, _announcing = await asyncio.wait_for(late[0], 5)
    await settle()
    assert prepared.is_new and prepared.conversation.pk == senders[1].pk
    assert (
        await database_sync_to_async(Message.objects.filter(conversation=senders[1]).count)() == 2
    )


@pytest.mark.django_db(transaction=True)
async def test_a_burst_is_stored_in_batches_side_by_side_where_the_database_allows(
    senders, monkeypatch
):
    monkeypatch.setattr(database, "side_by_side", lambda: True)
    storing: list[int] = []
    all_started, go_on = threading.Event(), threading.Event()

    def refuse_all(posts):
        storing.append(len(posts))
        if len(storing) == 3:
            all_started.set()
        go_on.wait(5)
        return [ChatError("busy", "Not now.") for _ in posts]

    monkeypatch.setattr(services, "post_messages", refuse_all)
    queue = replies.PostQueue()
    futures = [queue.put(post) for post in posts_of(senders * 12)]
    # The three batches are being stored at the same time, none waiting for another.
    assert await asyncio.to_thread(all_started.wait, 5)
    assert sorted(storing) == [20, 50, 50]
    go_on.set()
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(r, ChatError) and r.code == "busy" for r in results)
    # The posts are answered as each batch is stored; a worker leaves once it finds none left.
    await asyncio.wait_for(asyncio.gather(*queue.workers), 5)
    assert queue.busy == 0


@pytest.mark.django_db(transaction=True)
async def test_a_worker_stores_the_next_batch_without_waiting_for_the_event_loop(
    senders, monkeypatch
):
    monkeypatch.setattr(database, "side_by_side", lambda: False)
    storing: list[int] = []
    first_started, go_on, second_stored = threading.Event(), threading.Event(), threading.Event()

    def refuse_all(posts):
        storing.append(len(posts))
        if len(storing) == 1:
            first_started.set()
            go_on.wait(5)
        else:
            second_stored.set()
        return [ChatError("busy", "Not now.") for _ in posts]

    monkeypatch.setattr(services, "post_messages", refuse_all)
    queue = replies.PostQueue()
    futures = [queue.put(post) for post in posts_of(senders * 10)]  # two batches of fifty
    assert await asyncio.to_thread(first_started.wait, 5)
    # The event loop is busy (here: blocked) when the first batch is stored; the database
    # thread takes the second all the same instead of waiting for the loop to hand it over.
    go_on.set()
    assert second_stored.wait(5)
    assert storing == [50, 50]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(r, ChatError) and r.code == "busy" for r in results)
    # The posts are answered as each batch is stored; a worker leaves once it finds none left.
    await asyncio.wait_for(asyncio.gather(*queue.workers), 5)
    assert queue.busy == 0


@pytest.mark.django_db(transaction=True)
async def test_a_long_run_of_batches_makes_room_for_other_database_work(senders, monkeypatch):
    monkeypatch.setattr(database, "side_by_side", lambda: False)
    monkeypatch.setattr(replies, "POST_TRIP_SECONDS", 0)
    done: list[str] = []
    first_started, go_on = threading.Event(), threading.Event()

    def refuse_all(posts):
        if not done:
            first_started.set()
            go_on.wait(5)
        done.append(f"batch of {len(posts)}")
        return [ChatError("busy", "Not now.") for _ in posts]

    monkeypatch.setattr(services, "post_messages", refuse_all)
    queue = replies.PostQueue()
    futures = [queue.put(post) for post in posts_of(senders * 10)]  # two batches of fifty
    assert await asyncio.to_thread(first_started.wait, 5)
    # A connect's read, say, queued on the database thread while the first batch is stored.
    other = asyncio.ensure_future(database.in_database(done.append)("other work"))
    # Its first step hands it to the thread's queue (asgiref submits before it first waits).
    await asyncio.sleep(0)
    go_on.set()
    await asyncio.gather(*futures, return_exceptions=True)
    await other
    await asyncio.wait_for(asyncio.gather(*queue.workers), 5)
    assert done == ["batch of 50", "other work", "batch of 50"]
    assert queue.busy == 0


@pytest.mark.django_db(transaction=True)
async def test_a_failing_database_thread_answers_the_waiting_posts_and_frees_the_queue(
    senders, monkeypatch
):
    monkeypatch.setattr(database, "side_by_side", lambda: False)
    queue = replies.PostQueue()
    store = queue._store
    calls: list[int] = []

    def failing_once(loop, worker):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database thread broke")
        return store(loop, worker)

    monkeypatch.setattr(queue, "_store", failing_once)
    first = queue.put(posts_of(senders[:1])[0])
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(first, 5)
    await asyncio.wait_for(asyncio.gather(*queue.workers), 5)
    assert queue.busy == 0
    prepared, _announcing = await asyncio.wait_for(
        queue.put(posts_of(senders[1:2], "Still there?")[0]), 5
    )
    assert prepared.is_new and prepared.conversation.pk == senders[1].pk


@pytest.mark.django_db(transaction=True)
async def test_on_sqlite_batches_are_stored_one_after_another(senders, monkeypatch):
    monkeypatch.setattr(database, "side_by_side", lambda: False)
    assert replies.PostQueue().most_workers == 1


@pytest.mark.django_db(transaction=True)
async def test_a_batch_sweeps_the_orphans_of_its_conversations_before_the_limits(senders):
    orphans = [await half_written_reply(c, lease_seconds=-1) for c in senders[:2]]
    live = await half_written_reply(senders[2], lease_seconds=30)
    results = await database_sync_to_async(post_messages)(posts_of(senders[:3], "Again"))
    assert [type(r).__name__ for r in results] == ["PreparedReply", "PreparedReply", "ChatError"]
    assert results[2].code == "reply_in_progress"
    for reply in [*orphans, live]:
        await database_sync_to_async(reply.refresh_from_db)()
    assert [r.status for r in orphans] == [Status.INTERRUPTED, Status.INTERRUPTED]
    assert live.status == Status.STREAMING


@pytest.mark.django_db(transaction=True)
async def test_database_work_runs_on_one_thread_whatever_the_database(settings):
    """Side by side on PostgreSQL, the database threads spent the event loop's core on the
    ORM's work: one process at 25 replies a second gave first tokens 14 s late instead of 2 s
    (docs/benchmarks.md). The suite runs this on SQLite and on PostgreSQL."""
    calls = [database.in_database(threading.get_ident)() for _ in range(8)]
    threads = set(await asyncio.gather(*calls))
    assert len(threads) == 1 and threads != {threading.get_ident()}
    assert not database.side_by_side()
    assert replies.PostQueue().most_workers == 1
    settings.CHAT_DATABASE_THREADS = True
    engine = settings.DATABASES["default"]["ENGINE"]
    assert database.side_by_side() == (engine != "django.db.backends.sqlite3")
