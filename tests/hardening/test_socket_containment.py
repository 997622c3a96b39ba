"""One user's frames and sockets stay that user's problem: a bad frame fails alone, a socket
that does not read cannot make the server buffer without end, no frame the server sends is
over daphne's 1 MiB limit, and the limits count what they claim to. Each attack is timed
against a second user, the victim, where others could be hurt."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from conversations import compare, services
from conversations.consumers import MAX_FRAME_BYTES, SYNC_MAX_MESSAGES
from conversations.models import Message, ModelCall, Role, Status
from tests.conversations.chat_client import ChatSocket, saved, settle
from tests.paths import bulk_append

from .sockets import logged_in
from .victim import Victim

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer", "server_collector"),
]

# daphne refuses to send a WebSocket message larger than this, and closes the socket.
DAPHNE_LIMIT = 1024 * 1024


async def raw_frames(socket: ChatSocket, *, until: str, timeout: float = 20) -> list[str]:
    """The frames as sent, up to the first of type `until`, each checked against the limit."""
    texts = []
    async with asyncio.timeout(timeout):
        while True:
            text = await socket.communicator.receive_from(timeout=timeout)
            assert len(text.encode()) < DAPHNE_LIMIT, f"a frame of {len(text.encode())} bytes"
            texts.append(text)
            frame = json.loads(text)
            socket.frames.append(frame)
            if frame["type"] == until and frame.get("done", True):
                return texts


@pytest.fixture
async def victim(outsider, personas, model_server):
    conversation = await database_sync_to_async(services.start_conversation)(user=outsider)
    return await Victim.ready(outsider, conversation)


# 1. One bad message fails only itself.


@pytest.mark.parametrize("bad", ["\ud800", "a\x00b"], ids=["lone-surrogate", "nul"])
async def test_text_that_cannot_be_stored_is_refused_at_the_frame(owner, conversation, bad):
    """A lone surrogate cannot be encoded for the database, a NUL PostgreSQL refuses. Without
    the check at the frame it reached the batch of messages being stored and failed it."""
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.send({"type": "message.send", "client_id": "bad", "content": bad})
        error = await socket.until("error")
        await socket.say("Still here")
        assert (await socket.until("reply.ended"))["message"]["status"] == Status.COMPLETE
    assert error["code"] == "invalid" and error["message"]
    assert [m.content for m in await saved(conversation) if m.role == Role.USER] == ["Still here"]


def test_a_post_that_fails_its_write_fails_alone(owner, outsider, personas, model_server):
    """Messages sent at the same moment are stored together. A post whose write fails (here
    one whose text the database cannot encode, sent past the frame's check) used to fail the
    whole batch: every other user's message in it was lost."""
    mine = services.start_conversation(user=owner)
    theirs = [services.start_conversation(user=outsider) for _ in range(3)]
    posts = [
        services.Post(outsider, c.pk, f"Hello {i}", uuid.uuid4().hex) for i, c in enumerate(theirs)
    ]
    posts.insert(1, services.Post(owner, mine.pk, "bad \ud800", uuid.uuid4().hex))
    results = services.post_messages(posts)
    assert isinstance(results[1], Exception)
    stored = [r for i, r in enumerate(results) if i != 1]
    assert all(isinstance(r, services.PreparedReply) for r in stored)
    for conversation, index in zip(theirs, range(3), strict=True):
        assert [m.content for m in conversation.messages.filter(role=Role.USER)] == [
            f"Hello {index}"
        ]
    assert not mine.messages.exists()
    Message.objects.filter(status=Status.STREAMING).update(status=Status.STOPPED)


async def test_bad_frames_at_thirty_a_second_do_not_hurt_another_user(owner, conversation, victim):
    """30 unstorable frames a second from one user, while another chats: before, 5 of the
    victim's 12 messages were lost and the victim's socket closed with 1011."""

    async def attack() -> None:
        async with ChatSocket(owner, conversation.pk) as socket:
            await socket.until("ready")
            while True:
                await socket.send(
                    {"type": "message.send", "client_id": uuid.uuid4().hex, "content": "\ud800"}
                )
                await asyncio.sleep(1 / 30)

    attacking = asyncio.create_task(attack())
    try:
        await asyncio.sleep(0.2)
        for _ in range(3):
            await victim.still_served("30 bad frames a second")
    finally:
        attacking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attacking
    assert not await database_sync_to_async(conversation.messages.exists)()


# 2. A socket that does not read.


@database_sync_to_async
def long_conversation(conversation, count: int, chars: int, text: str = "가") -> None:
    bulk_append(
        Message(
            conversation=conversation,
            role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
            content=text * chars,
        )
        for i in range(count)
    )


async def test_subscribes_from_a_socket_that_does_not_read_are_answered_once(
    owner, conversation, victim
):
    """Ten sockets that never read, each sending `subscribe` ten times a second on a large
    conversation: before, each subscribe queued the whole conversation again (the server grew
    by a gigabyte in 15 s). Now a socket's next answer waits for it to acknowledge the last
    one, which only reading it tells; what one answer holds is bounded too."""
    await long_conversation(conversation, 150, 3000)
    sockets = [await logged_in(owner, conversation.pk) for _ in range(10)]
    for socket in sockets:
        await socket.communicator.connect()
        await socket.until("ready")
    for _ in range(10):
        for socket in sockets:
            await socket.send({"type": "subscribe", "after_id": 0})
        await asyncio.sleep(0.1)
    await victim.still_served("ten sockets subscribing without reading")
    for socket in sockets:
        while not await socket.communicator.receive_nothing(timeout=0.2):
            await socket.receive()
        answers = {frame["sync_id"] for frame in socket.of_type("sync")}
        sent = sum(len(frame["messages"]) for frame in socket.of_type("sync"))
        assert len(answers) == 1
        assert sent == SYNC_MAX_MESSAGES
        await socket.communicator.disconnect()


async def test_a_subscribe_sends_the_newest_page_and_says_where_it_starts(owner, conversation):
    """A catch-up is bounded: the newest messages, and `from_id`, the newest left out, so the
    page fetches older ones over HTTP."""
    await long_conversation(conversation, SYNC_MAX_MESSAGES + 20, 10, "x")
    ids = [m.pk for m in await saved(conversation)]
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.send({"type": "subscribe", "after_id": 0})
        await raw_frames(socket, until="sync")
    pages = socket.of_type("sync")
    sent = [m["id"] for page in pages for m in page["messages"]]
    assert sent == ids[-SYNC_MAX_MESSAGES:]
    assert pages[-1]["from_id"] == ids[-SYNC_MAX_MESSAGES - 1]


# 3. No frame over daphne's limit.


async def test_a_reconnect_on_long_korean_messages_is_sent_in_pages_under_the_limit(
    owner, conversation
):
    """Nine messages of 20,000 Korean characters: one `sync` of them was over 1 MiB, daphne
    refused it and the socket died with 1011, again at every reconnect."""
    await long_conversation(conversation, 9, 20_000)
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.send({"type": "subscribe", "after_id": 0})
        await raw_frames(socket, until="sync")
    pages = socket.of_type("sync")
    assert len(pages) > 1 and pages[-1]["done"] and not any(p["done"] for p in pages[:-1])
    assert sum(len(p["messages"]) for p in pages) == 9
    assert {p["sync_id"] for p in pages} == {pages[0]["sync_id"]}


async def test_a_long_reply_with_twenty_alternatives_a_token_stays_under_the_limit(
    owner, conversation, settings
):
    """2,500 tokens with `top_logprobs=20`: its `reply.ended`, carrying every token's
    alternatives, was over 1 MiB. Now the logprobs travel in pieces with the deltas, and the
    page fetches the stored ones over HTTP."""
    settings.OPENAI_READ_TIMEOUT = 15  # a busy machine writes 20 alternatives a token slowly
    conversation.logprobs, conversation.top_logprobs = True, 20
    conversation.max_completion_tokens = 4000
    await database_sync_to_async(conversation.save)()
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Tell me a long story [[sim:tokens=2500]]")
        texts = await raw_frames(socket, until="reply.ended", timeout=60)
    ended = socket.of_type("reply.ended")[0]["message"]
    assert ended["status"] == Status.COMPLETE and ended["has_logprobs"]
    streamed = [i for f in socket.of_type("reply.delta") for i in f.get("logprobs", [])]
    assert len(streamed) >= 2500
    assert max(len(t.encode()) for t in texts) < MAX_FRAME_BYTES


async def test_a_huge_system_prompt_travels_in_no_frame(owner, conversation):
    """A system prompt carried in every reply's parameters made each frame as large as it."""
    conversation.system_prompt = "Be brief. " * 5000
    await database_sync_to_async(conversation.save)()
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Hello")
        texts = await raw_frames(socket, until="reply.ended")
        await socket.send({"type": "subscribe", "after_id": 0})
        texts += await raw_frames(socket, until="sync")
    assert not any("Be brief." in text for text in texts)
    assert all(len(text) < 5000 for text in texts)


def test_a_replys_logprobs_are_fetched_over_http_by_their_owner_only(
    client, owner, outsider, conversation
):
    reply = Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="Hi",
        logprobs=[{"token": "Hi", "logprob": -0.1, "top_logprobs": []}],
    )
    url = f"/c/{conversation.pk}/messages/{reply.pk}/logprobs/"
    client.force_login(owner)
    assert client.get(url).json() == {"logprobs": reply.logprobs}
    client.force_login(outsider)
    assert client.get(url).status_code == 404


# 4. Model calls, counted whatever makes them.


async def test_every_action_that_calls_the_model_counts_against_the_minute(
    owner, conversation, settings
):
    """Regenerate, edit and continue each call the model and were not counted; deleting
    conversations reset the count. 20 a minute became 85 model calls in 8.5 s."""
    settings.CHAT_MESSAGES_PER_MINUTE = 4
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Hello")
        await socket.until("reply.ended")
        for _ in range(3):
            await socket.send({"type": "reply.regenerate", "client_id": uuid.uuid4().hex})
            await socket.until("reply.ended")
        await socket.send({"type": "reply.regenerate", "client_id": uuid.uuid4().hex})
        refused = await socket.until("error")
    assert refused["code"] == "rate_limited"
    await database_sync_to_async(services.delete_conversation)(
        user=owner, conversation_id=conversation.pk
    )
    fresh = await database_sync_to_async(services.start_conversation)(user=owner)
    async with ChatSocket(owner, fresh.pk) as socket:
        await socket.until("ready")
        await socket.say("After deleting everything")
        still = await socket.until("error")
    assert still["code"] == "rate_limited"
    assert await database_sync_to_async(ModelCall.objects.filter(user=owner).count)() == 4


# 8. Input that used to raise.


async def test_brackets_nested_past_the_parser_are_bad_json_and_log_no_traceback(
    owner, conversation, caplog
):
    """80,000 `[` (under the size cap) raised RecursionError and closed the socket with 1011."""
    caplog.set_level(logging.INFO)
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.communicator.send_to(text_data="[" * 80_000)
        error = await socket.until("error")
        await socket.say("Still here")
        assert (await socket.until("reply.ended"))["message"]["status"] == Status.COMPLETE
    assert error["code"] == "bad_json"
    assert not [r for r in caplog.records if r.exc_info]


# 9. Sockets per user.


async def test_sockets_per_user_are_capped_with_a_reason(owner, conversation, victim, settings):
    """500 sockets of one user slowed another user's reply from 0.09 s to 0.73 s."""
    settings.CHAT_MAX_SOCKETS_PER_USER = 5
    sockets = [await logged_in(owner, conversation.pk) for _ in range(6)]
    try:
        for socket in sockets[:5]:
            await socket.communicator.connect()
            await socket.until("ready")
        await sockets[5].communicator.connect()
        refused = await sockets[5].receive()
        closed = await sockets[5].communicator.receive_output()
        assert refused["code"] == "too_many_sockets" and "5" in refused["message"]
        assert closed == {"type": "websocket.close", "code": 4429}
        await victim.still_served("one user holding every socket allowed")
    finally:
        for socket in sockets:
            await socket.communicator.disconnect()
    again = await logged_in(owner, conversation.pk)
    async with again:
        assert (await again.until("ready"))["type"] == "ready"
    await settle()


async def test_a_connect_that_fails_half_way_holds_no_place(owner, conversation, settings):
    """A socket whose connect failed (here the channel layer was down when it joined the
    conversation's group) used to keep its place: a few such and the user was locked out."""
    settings.CHAT_MAX_SOCKETS_PER_USER = 1
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "tests.conversations.test_reply_endings.FlakyLayer"}
    }
    get_channel_layer().failing = True
    failed = await logged_in(owner, conversation.pk)
    await failed.communicator.connect()  # accepted; then joining the group fails
    with pytest.raises(ConnectionError):
        await failed.communicator.wait()
    get_channel_layer().failing = False
    async with await logged_in(owner, conversation.pk) as socket:
        assert (await socket.until("ready"))["type"] == "ready"


@database_sync_to_async
def model_calls(user) -> int:
    return ModelCall.objects.filter(user=user).count()


async def test_each_action_that_calls_the_model_is_one_model_call(owner, conversation, personas):
    """Message, regenerate, edit, continue and each column of a compare: one call each."""
    conversation.max_completion_tokens = 5  # cut off, so that it can be continued
    await database_sync_to_async(conversation.save)()
    counts = []
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Hello")
        await socket.until("reply.ended")
        counts.append(await model_calls(owner))
        await socket.send({"type": "reply.regenerate", "client_id": uuid.uuid4().hex})
        await socket.until("reply.ended")
        counts.append(await model_calls(owner))
        question = [m for m in await saved(conversation) if m.role == Role.USER][-1]
        await socket.send(
            {
                "type": "message.edit",
                "client_id": uuid.uuid4().hex,
                "message_id": question.pk,
                "content": "Hello again",
            }
        )
        await socket.until("reply.ended")
        counts.append(await model_calls(owner))
        await socket.send({"type": "reply.continue", "client_id": uuid.uuid4().hex})
        await socket.until("reply.ended")
        counts.append(await model_calls(owner))
    columns = await compare.start_compare(
        user=owner, prompt="Compare", targets=[compare.Target(p) for p in personas[:2]]
    )
    assert all(column.error is None for column in columns)
    await settle()
    counts.append(await model_calls(owner))
    assert counts == [1, 2, 3, 4, 6]
