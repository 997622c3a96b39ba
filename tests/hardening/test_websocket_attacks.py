"""Attacks on the chat socket, through the whole ASGI application (origin validator, session
cookie, auth middleware, consumer): each test says what it attacks and what would happen
without the protection."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from channels.db import database_sync_to_async

from conversations import services
from conversations.consumers import FRAME_BURST
from conversations.models import Message, Role, Status
from tests.conversations.chat_client import saved, settle

from .sockets import AppSocket, cookie_for, logged_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer"),
]


async def assert_refused_before_accept(socket: AppSocket) -> None:
    connected, _code = await socket.communicator.connect()
    try:
        assert not connected
        assert await socket.communicator.receive_nothing(timeout=0.2)
    finally:
        await socket.communicator.disconnect()


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://127.0.0.1.evil.example", "null", ""],
    ids=["another-site", "look-alike", "null", "none"],
)
async def test_a_socket_opened_from_another_origin_is_refused(owner, conversation, origin):
    """Cross-site WebSocket hijacking: a page on another site opens the socket and the browser
    sends the victim's cookie along. Without the origin check (SiteOriginValidator in
    chatsite/origins.py) the socket would be accepted and stream the victim's conversation."""
    socket = AppSocket(conversation.pk, cookie=await cookie_for(owner), origin=origin)
    await assert_refused_before_accept(socket)


async def test_the_same_cookie_from_the_sites_own_origin_is_accepted(owner, conversation):
    """The control for the test above: only the origin differs."""
    async with await logged_in(owner, conversation.pk) as socket:
        assert (await socket.until("ready"))["conversation_id"] == str(conversation.pk)


@pytest.mark.parametrize("cookie", ["", "sessionid=forged-session-key"], ids=["none", "forged"])
async def test_a_socket_without_a_valid_login_is_refused_at_connect(conversation, cookie):
    """Reading or driving a conversation without logging in: without the check in `connect`
    the socket would send `ready` and accept frames from anyone who knows the address."""
    socket = AppSocket(conversation.pk, cookie=cookie)
    connected, _ = await socket.communicator.connect()
    assert connected  # accepted only to say why, then closed
    frame = await socket.receive()
    assert frame["type"] == "error" and frame["code"] == "not_authenticated"
    assert frame["message"]
    assert await socket.communicator.receive_output() == {"type": "websocket.close", "code": 4401}
    await socket.communicator.disconnect()


async def test_another_users_conversation_is_refused_and_looks_like_a_missing_one(
    owner, outsider, conversation
):
    """Reading someone else's conversation by its id: without the ownership check the outsider
    would receive its replies. The refusal is the same as for an id that does not exist, so
    it does not even tell that the conversation exists."""
    frames = []
    for conversation_id in [conversation.pk, uuid.uuid4()]:
        socket = await logged_in(outsider, conversation_id)
        await socket.communicator.connect()
        frames.append(await socket.receive())
        closed = await socket.communicator.receive_output()
        assert closed == {"type": "websocket.close", "code": 4404}
        await socket.communicator.disconnect()
    assert frames[0] == frames[1]
    assert frames[0]["code"] == "not_found"


async def test_an_outsider_hears_nothing_of_a_reply_in_anothers_conversation(
    owner, outsider, conversation
):
    """The socket refused above leaves no subscription behind: the owner's reply streams and
    the outsider's (closed) socket receives none of it."""
    intruder = await logged_in(outsider, conversation.pk)
    await intruder.communicator.connect()
    await intruder.communicator.receive_output()  # the error
    await intruder.communicator.receive_output()  # the close
    async with await logged_in(owner, conversation.pk) as socket:
        await socket.say("Something private")
        await socket.until("reply.ended")
    assert await intruder.communicator.receive_nothing(timeout=0.2)
    await intruder.communicator.disconnect()


async def test_a_frame_over_the_size_limit_is_refused_and_the_socket_stays_usable(
    owner, conversation, settings
):
    """A frame far larger than any message (memory and CPU for parsing it): refused with
    `too_large` before it is parsed, and nothing is stored. (Frames over daphne's own 1 MiB
    limit are cut off by daphne itself: see test_production_process.py.)"""
    settings.CHAT_MAX_MESSAGE_CHARS = 100
    async with await logged_in(owner, conversation.pk) as socket:
        await socket.until("ready")
        padding = "x" * 200_000
        await socket.communicator.send_to(
            text_data=f'{{"type": "message.send", "client_id": "a", "content": "{padding}"}}'
        )
        error = await socket.until("error")
        assert error["code"] == "too_large" and error["message"]
        await socket.say("Still here?")
        assert (await socket.until("reply.ended"))["message"]["status"] == Status.COMPLETE
    assert [m.content for m in await saved(conversation)][:1] == ["Still here?"]


async def test_a_flood_of_frames_is_refused_without_harming_another_user(
    owner, outsider, personas, model_server
):
    """One user sends a thousand `subscribe` frames at once (each would read the whole
    conversation from the database and queue it for a socket that need not read it).
    Without the per-socket frame budget every one would be served. With it, the first is
    answered, the rest of a burst are told the last answer is still unread, the frames over
    the budget are dropped with one `slow_down` a second, and another user's reply on the
    same process still streams promptly."""
    model_server.config.tokens_per_second = 200
    own = await database_sync_to_async(services.start_conversation)(user=owner)
    theirs = await database_sync_to_async(services.start_conversation)(user=outsider)
    async with (
        await logged_in(owner, own.pk) as attacker,
        await logged_in(outsider, theirs.pk) as victim,
    ):
        await attacker.until("ready")
        await victim.until("ready")
        for _ in range(1000):
            await attacker.send({"type": "subscribe", "after_id": 0})
        started = time.monotonic()
        await victim.say("Hello [[sim:tokens=40]]")
        ended = await victim.until("reply.ended", timeout=10)
        victim_seconds = time.monotonic() - started
        answers = []
        while not await attacker.communicator.receive_nothing(timeout=0.5):
            answers.append(await attacker.receive())
    served = [frame for frame in answers if frame["type"] == "sync"]
    told = [frame for frame in answers if frame["type"] == "conversation.updated"]
    refused = [frame for frame in answers if frame.get("code") == "slow_down"]
    # One answer: the conversation as it is now, then its one page of messages.
    assert len(served) == len(told) == 1
    assert served[0]["done"]
    assert len(refused) == len(answers) - 2
    assert len(answers) <= FRAME_BURST + 10, f"{len(answers)} frames answered a flood"
    assert ended["message"]["status"] == Status.COMPLETE
    print(f"victim during a flood of subscribe frames: {victim_seconds * 1000:.0f} ms")
    assert victim_seconds < 5, f"the other user's reply took {victim_seconds:.1f} s"


async def test_limits_per_user_are_answered_with_a_clear_message(
    owner, personas, model_server, settings
):
    """One account starting replies in many conversations, or sending without pause, or
    pasting a novel: each is refused with a code and a sentence that names the limit."""
    settings.CHAT_MAX_CONCURRENT_REPLIES = 1
    settings.CHAT_MESSAGES_PER_MINUTE = 3
    settings.CHAT_MAX_MESSAGE_CHARS = 50
    model_server.config.tokens_per_second = 20
    first = await database_sync_to_async(services.start_conversation)(user=owner)
    second = await database_sync_to_async(services.start_conversation)(user=owner)
    async with (
        await logged_in(owner, first.pk) as one,
        await logged_in(owner, second.pk) as two,
    ):
        await one.say("Slow one [[sim:tokens=200]]")
        await one.until("reply.delta")
        await two.say("Another at the same time")
        too_many = await two.until("error")
        await two.say("y" * 51)
        too_long = await two.until("error")
        await one.send({"type": "reply.stop"})
        await one.until("reply.ended")
        await two.say("Now it may go")
        await two.until("reply.ended")
        await two.say("And a third")
        await two.until("reply.ended")
        await two.say("One too many this minute")
        too_fast = await two.until("error")
    assert too_many["code"] == "too_many_replies" and "1" in too_many["message"]
    assert too_long["code"] == "message_too_long" and "50" in too_long["message"]
    assert too_fast["code"] == "rate_limited" and "3" in too_fast["message"]
    stored = [m.content for m in await saved(second)]
    assert "Another at the same time" not in stored
    assert "One too many this minute" not in stored


async def test_a_flood_does_not_starve_the_attackers_own_later_frames(owner, conversation):
    """The budget refills: after a pause the same socket is served again (no permanent
    lock-out that a single burst from a bad network could cause), and a client that read the
    last answer (it acknowledges its `sync_id`) is caught up again."""
    async with await logged_in(owner, conversation.pk) as socket:
        await socket.until("ready")
        for _ in range(FRAME_BURST + 20):
            await socket.send({"type": "subscribe"})
        while not await socket.communicator.receive_nothing(timeout=0.3):
            await socket.receive()
        first = socket.of_type("sync")[-1]
        await asyncio.sleep(1.0)
        await socket.send({"type": "subscribe", "ack": first["sync_id"]})
        again = await socket.until("sync")
    assert again["done"] and again["sync_id"] != first["sync_id"]


# One account, many conversations, all at the same moment.


async def sockets_on_fresh_conversations(user, count: int) -> list[AppSocket]:
    sockets = []
    for _ in range(count):
        conversation = await database_sync_to_async(services.start_conversation)(user=user)
        socket = await logged_in(user, conversation.pk)
        await socket.__aenter__()
        await socket.until("ready")
        sockets.append(socket)
    return sockets


@database_sync_to_async
def stored_messages(user, role: str) -> int:
    return Message.objects.owned_by(user).filter(role=role).count()


async def answer_to_message(socket: AppSocket) -> dict:
    """The server's answer to the message just sent: its reply started, or an error."""
    while True:
        frame = await socket.receive(timeout=10)
        if frame["type"] == "error":
            return frame
        if frame["type"] == "message.created" and frame["message"]["role"] == Role.ASSISTANT:
            return frame


async def close_all(sockets: list[AppSocket]) -> None:
    for socket in sockets:
        await socket.send({"type": "reply.stop"})
    await settle()
    for socket in sockets:
        await socket.__aexit__()


async def test_replies_at_once_hold_when_many_conversations_start_together(
    owner, personas, model_server, settings
):
    """The limit on replies at once, raced: six tabs of one account, six conversations, one
    message each at the same instant. Each start counts the account's streaming replies; if
    the counts do not see one another, all six pass a limit of two."""
    settings.CHAT_MAX_CONCURRENT_REPLIES = 2
    model_server.config.tokens_per_second = 10
    sockets = await sockets_on_fresh_conversations(owner, 6)
    try:
        await asyncio.gather(*(socket.say("Go [[sim:tokens=50]]") for socket in sockets))
        answers = await asyncio.gather(*(answer_to_message(socket) for socket in sockets))
        started = await stored_messages(owner, Role.ASSISTANT)
    finally:
        await close_all(sockets)
    refused = [a["code"] for a in answers if a["type"] == "error"]
    assert refused == ["too_many_replies"] * 4
    assert started == 2, f"{started} replies started with a limit of 2"


async def test_messages_per_minute_hold_when_many_conversations_send_together(
    owner, personas, model_server, settings
):
    """The same race against the messages-per-minute limit."""
    settings.CHAT_MESSAGES_PER_MINUTE = 2
    sockets = await sockets_on_fresh_conversations(owner, 6)
    try:
        await asyncio.gather(*(socket.say("Hello [[sim:tokens=5]]") for socket in sockets))
        answers = await asyncio.gather(*(answer_to_message(socket) for socket in sockets))
        sent = await stored_messages(owner, Role.USER)
    finally:
        await close_all(sockets)
    refused = [a["code"] for a in answers if a["type"] == "error"]
    assert refused == ["rate_limited"] * 4
    assert sent == 2, f"{sent} messages stored with a limit of 2 a minute"
