"""The socket: catch-up after a reconnect, several sockets, ownership, malformed frames, limits."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from conversations import replies, services
from conversations.consumers import FRAME_BURST
from conversations.layers import LocalChannelLayer
from conversations.models import Message, Role, Status

from .chat_client import ChatSocket, half_written_reply, saved, session_cookie, settle, site_socket

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_a_client_that_reconnects_mid_reply_ends_with_exactly_the_saved_text(
    owner, conversation, model_server
):
    model_server.config.tokens_per_second = 50
    first = ChatSocket(owner, conversation.pk)
    await first.__aenter__()
    await first.say("Tell me a long story [[sim:tokens=120]]")
    created = [await first.until("message.created"), await first.until("message.created")]
    reply_id = created[1]["message"]["id"]
    for _ in range(10):
        await first.until("reply.delta")
    await first.__aexit__()  # the network drops

    await asyncio.sleep(0.3)  # deltas go by while the client is away
    async with ChatSocket(owner, conversation.pk) as again:
        state = await again.until("reply.state")
        assert state["reply_id"] == reply_id and state["seq"] > 10
        ended = await again.until("reply.ended")
    text = ended["message"]["content"]
    assert again.streamed_text(reply_id) == text
    assert (await saved(conversation))[-1].content == text


async def test_subscribe_returns_what_was_missed(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("First")
        first = await socket.until("message.created")
        await socket.until("reply.ended")
        await socket.send({"type": "subscribe", "after_id": first["message"]["id"]})
        sync = await socket.until("sync")
    assert [m["role"] for m in sync["messages"]] == ["assistant"]
    assert sync["messages"][0]["status"] == "complete"


async def test_two_sockets_on_one_conversation_both_receive_the_reply(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as one, ChatSocket(owner, conversation.pk) as two:
        await one.until("ready")
        await two.until("ready")
        await one.say("Hello to both tabs")
        ended_one = await one.until("reply.ended")
        ended_two = await two.until("reply.ended")
    reply_id = ended_one["message"]["id"]
    assert ended_one == ended_two
    assert one.streamed_text(reply_id) == two.streamed_text(reply_id) != ""
    assert two.of_type("message.created")[0]["message"]["content"] == "Hello to both tabs"


async def test_stop_works_from_another_tab(owner, conversation, model_server):
    model_server.config.tokens_per_second = 30
    async with ChatSocket(owner, conversation.pk) as one, ChatSocket(owner, conversation.pk) as two:
        await one.say("Go on and on [[sim:tokens=300]]")
        await two.until("reply.delta")
        await two.send({"type": "reply.stop"})
        ended = await one.until("reply.ended")
    assert ended["message"]["status"] == Status.STOPPED


async def test_closing_the_socket_does_not_stop_the_reply(owner, conversation, model_server):
    model_server.config.tokens_per_second = 100
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Keep going without me [[sim:tokens=60]]")
        await socket.until("reply.delta")
    await settle()
    reply = (await saved(conversation))[-1]
    assert reply.status == Status.COMPLETE
    assert reply.completion_tokens >= 60


async def test_an_orphaned_streaming_reply_is_swept_to_interrupted(owner, conversation):
    reply = await half_written_reply(
        conversation, lease_seconds=-1, runner_channel="reply.gone!dead"
    )
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.send({"type": "subscribe", "after_id": 0})
        sync = await socket.until("sync")
    assert sync["messages"][-1]["status"] == Status.INTERRUPTED
    await database_sync_to_async(reply.refresh_from_db)()
    assert reply.status == Status.INTERRUPTED and reply.content == "Half an ans"
    assert reply.error


async def test_a_live_reply_is_never_swept(owner, conversation):
    @database_sync_to_async
    def live() -> int:
        reply = Message.objects.create(
            conversation=conversation,
            role=Role.ASSISTANT,
            status=Status.STREAMING,
            lease_expires_at=timezone.now() + timedelta(seconds=30),
        )
        return services.sweep_orphaned_replies() + (reply.pk * 0)

    assert await live() == 0


async def test_another_users_conversation_is_refused_on_the_socket(outsider, conversation):
    socket = ChatSocket(outsider, conversation.pk)
    _connected, _ = await socket.communicator.connect()
    frame = await socket.receive()
    assert frame == {"type": "error", "code": "not_found", "message": frame["message"]}
    closed = await socket.communicator.receive_output()
    assert closed == {"type": "websocket.close", "code": 4404}


async def test_a_stranger_is_refused_on_the_socket(conversation):
    from django.contrib.auth.models import AnonymousUser

    socket = ChatSocket(AnonymousUser(), conversation.pk)
    await socket.communicator.connect()
    assert (await socket.receive())["code"] == "not_authenticated"
    assert (await socket.communicator.receive_output())["code"] == 4401


MALFORMED = [
    ("not json at all", "bad_json"),
    ("[1, 2]", "bad_json"),
    ('{"type": "dance"}', "unknown_type"),
    ('{"type": "message.send", "content": "hi"}', "invalid"),
    ('{"type": "message.send", "client_id": "a"}', "invalid"),
    ('{"type": "message.send", "client_id": "a", "content": 5}', "invalid"),
    ('{"type": "message.edit", "client_id": "a", "content": "x"}', "invalid"),
    ('{"type": "message.send", "client_id": "a", "content": "   "}', "empty_message"),
    ('{"type": "reply.stop"}', "nothing_to_stop"),
    ('{"type": "reply.regenerate", "client_id": "r"}', "nothing_to_regenerate"),
]


@pytest.mark.parametrize(("text", "code"), MALFORMED)
async def test_each_malformed_frame_gets_an_error_and_the_socket_stays_usable(
    owner, conversation, text, code
):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.communicator.send_to(text_data=text)
        error = await socket.until("error")
        assert error["code"] == code and error["message"]
        await socket.say("Still here?")
        assert (await socket.until("reply.ended"))["message"]["status"] == Status.COMPLETE


async def test_an_oversize_frame_is_refused(owner, conversation, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 100
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.communicator.send_to(text_data="x" * 2000)
        assert (await socket.until("error"))["code"] == "too_large"
        await socket.say("y" * 101)
        assert (await socket.until("error"))["code"] == "message_too_long"
    assert await saved(conversation) == []


async def test_a_flood_of_frames_is_slowed_down(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        for _ in range(40):
            await socket.send({"type": "dance"})
        while not await socket.communicator.receive_nothing(timeout=0.3):
            await socket.receive()
    codes = [frame["code"] for frame in socket.of_type("error")]
    # A burst's worth answered, then one `slow_down` for the frames dropped in that second.
    assert codes == ["unknown_type"] * FRAME_BURST + ["slow_down"]


async def test_replies_at_once_per_user_are_limited(owner, personas, model_server, settings):
    settings.CHAT_MAX_CONCURRENT_REPLIES = 1
    model_server.config.tokens_per_second = 20
    first = await database_sync_to_async(services.start_conversation)(user=owner)
    second = await database_sync_to_async(services.start_conversation)(user=owner)
    async with ChatSocket(owner, first.pk) as one, ChatSocket(owner, second.pk) as two:
        await one.say("Slow one [[sim:tokens=100]]")
        await one.until("reply.delta")
        await two.say("Another")
        error = await two.until("error")
        await one.send({"type": "reply.stop"})
        await one.until("reply.ended")
    assert error["code"] == "too_many_replies"
    assert await saved(second) == []


async def test_a_second_message_while_a_reply_streams_is_refused(owner, conversation, model_server):
    model_server.config.tokens_per_second = 20
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Slow [[sim:tokens=100]]")
        await socket.until("reply.delta")
        await socket.say("Impatient")
        error = await socket.until("error")
        await socket.send({"type": "reply.stop"})
        await socket.until("reply.ended")
    assert error["code"] == "reply_in_progress"
    assert len(await saved(conversation)) == 2


async def test_messages_per_minute_are_limited(owner, conversation, settings):
    settings.CHAT_MESSAGES_PER_MINUTE = 2
    async with ChatSocket(owner, conversation.pk) as socket:
        for text in ["one", "two"]:
            await socket.say(text)
            await socket.until("reply.ended")
        await socket.say("three")
        error = await socket.until("error")
    assert error["code"] == "rate_limited" and "2" in error["message"]
    assert [m.content for m in await saved(conversation) if m.role == Role.USER] == ["one", "two"]


def test_the_rate_counts_only_the_last_minute_and_only_the_users_own(
    owner, outsider, conversation, settings
):
    settings.CHAT_MESSAGES_PER_MINUTE = 2
    theirs = services.start_conversation(user=outsider)
    for text, owner_of in [("old one", conversation), ("old two", conversation), ("x", theirs)]:
        Message.objects.create(conversation=owner_of, role=Role.USER, content=text)
    Message.objects.filter(conversation=conversation).update(
        created_at=timezone.now() - timedelta(seconds=61)
    )
    services.post_message(user=owner, conversation_id=conversation.pk, content="a", client_id="a")
    Message.objects.filter(status=Status.STREAMING).update(status=Status.COMPLETE)
    services.post_message(user=owner, conversation_id=conversation.pk, content="b", client_id="b")
    Message.objects.filter(status=Status.STREAMING).update(status=Status.COMPLETE)
    with pytest.raises(services.ChatError) as refused:
        services.post_message(
            user=owner, conversation_id=conversation.pk, content="c", client_id="c"
        )
    assert refused.value.code == "rate_limited"


async def test_editing_the_last_message_asks_again_and_keeps_the_first_version(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Recipe for bread")
        user_id = (await socket.until("message.created"))["message"]["id"]
        await socket.until("reply.ended")
        await socket.send(
            {"type": "message.edit", "client_id": "e1", "message_id": user_id, "content": "Cake"}
        )
        edited = (await socket.until("message.created"))["message"]
        ended = await socket.until("reply.ended")
    assert edited["content"] == "Cake" and edited["parent_id"] is None
    assert (edited["version"], edited["versions"]) == (2, 2)
    assert "Cake" in ended["message"]["content"]
    stored = await saved(conversation)
    assert [m.content for m in stored if m.role == Role.USER] == ["Recipe for bread", "Cake"]
    assert len(stored) == 4


async def test_every_tab_hears_when_a_replys_process_dies(owner, conversation, settings):
    """No process renews the lease any more: a watching socket sweeps it and tells the group."""
    settings.CHAT_LEASE_SECONDS = 3.0

    @database_sync_to_async
    def dying() -> Message:
        Message.objects.create(conversation=conversation, role=Role.USER, content="Hi")
        return Message.objects.create(
            conversation=conversation,
            role=Role.ASSISTANT,
            status=Status.STREAMING,
            content="Half",
            seq=1,
            lease_expires_at=timezone.now() + timedelta(seconds=3),
            runner_channel="specific.gone!dead",
        )

    reply = await dying()
    async with ChatSocket(owner, conversation.pk) as one, ChatSocket(owner, conversation.pk) as two:
        state = await one.until("reply.state")
        assert state["content"] == "Half" and state["status"] == Status.STREAMING
        ended_one = await one.until("reply.ended", timeout=8)
        ended_two = await two.until("reply.ended", timeout=8)
    assert ended_one["message"]["status"] == Status.INTERRUPTED
    assert ended_two["message"]["id"] == reply.pk
    await database_sync_to_async(reply.refresh_from_db)()
    assert reply.status == Status.INTERRUPTED and reply.content == "Half"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"accept-language", b"ko-KR,ko;q=0.9,en;q=0.5")], "메시지가 비어 있습니다."),
        (
            [(b"cookie", b"django_language=ko"), (b"accept-language", b"en")],
            "메시지가 비어 있습니다.",
        ),
        ([(b"accept-language", b"en-US,en;q=0.9")], "The message is empty."),
    ],
)
async def test_errors_on_the_socket_speak_the_users_language(
    owner, conversation, headers, expected
):
    async with ChatSocket(owner, conversation.pk, headers=headers) as socket:
        await socket.say("   ")
        assert (await socket.until("error"))["message"] == expected


async def test_a_failed_reply_says_what_went_wrong_in_the_users_language(owner, conversation):
    headers = [(b"accept-language", b"ko")]
    async with ChatSocket(owner, conversation.pk, headers=headers) as socket:
        await socket.say("안녕 [[sim:fault=http:500]]")
        ended = await socket.until("reply.ended")
    assert ended["message"]["status"] == Status.ERROR
    assert "모델 서버" in ended["message"]["error"]


async def test_a_socket_visits_the_database_thread_only_for_its_queries(
    owner, conversation, monkeypatch
):
    """channels would close stale connections (in the database thread) before every event."""
    import channels.consumer

    visits: list[str] = []
    original = channels.consumer.aclose_old_connections

    async def counted() -> None:
        visits.append("close_old_connections")
        await original()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Several deltas please [[sim:tokens=40]]")
        await socket.until("reply.ended")
        visits_while_streaming = len(visits)
    assert len(socket.of_type("reply.delta")) > 1
    # Neither the frames from the browser nor the reply's events (created, deltas, ended,
    # title) take an extra trip: the queries close stale connections themselves.
    assert visits_while_streaming == 0


async def test_a_socket_opens_in_one_trip_to_the_database_thread(owner, conversation, monkeypatch):
    """channels' AuthMiddleware read the session's user in a trip of its own, then the socket
    its conversation and its streaming reply in one each: three trips a socket, each the
    database thread's and the event loop's time when hundreds of tabs open."""
    from channels.db import DatabaseSyncToAsync

    cookie = await session_cookie(owner)
    trips: list[str] = []
    original = DatabaseSyncToAsync.thread_handler

    def counted(self, *args, **kwargs):
        trips.append(getattr(self.func, "__name__", repr(self.func)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DatabaseSyncToAsync, "thread_handler", counted)
    socket = site_socket(conversation.pk, cookie)
    connected, _ = await socket.connect()
    assert connected
    ready = await socket.receive_json_from()
    assert ready["type"] == "ready" and ready["conversation_id"] == str(conversation.pk)
    assert trips == ["opening"]
    await socket.disconnect()


async def test_the_site_refuses_a_socket_without_a_session_or_for_anothers_conversation(
    outsider, conversation
):
    socket = site_socket(conversation.pk, None)
    await socket.connect()
    assert (await socket.receive_json_from())["code"] == "not_authenticated"
    assert (await socket.receive_output())["code"] == 4401
    socket = site_socket(conversation.pk, b"sessionid=not-a-session-of-anyone")
    await socket.connect()
    assert (await socket.receive_json_from())["code"] == "not_authenticated"
    assert (await socket.receive_output())["code"] == 4401
    socket = site_socket(conversation.pk, await session_cookie(outsider))
    await socket.connect()
    assert (await socket.receive_json_from())["code"] == "not_found"
    assert (await socket.receive_output())["code"] == 4404


class NewsOnJoining(LocalChannelLayer):
    """The one-process layer, with news for the group the moment a socket joins it (a reply
    that starts while the socket is being checked)."""

    async def group_add(self, group, channel):
        await super().group_add(group, channel)
        frame = {"type": "conversation.updated", "conversation": {"title": "secret"}}
        await self.group_send(group, {"type": "chat.event", "frame": frame})


async def test_a_refused_socket_hears_nothing_of_the_conversation(outsider, conversation, settings):
    """The socket joins the conversation's group before its owner is known, so that a reply
    starting meanwhile is not missed: a socket then refused forwards nothing it heard."""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "tests.conversations.test_socket_behaviour.NewsOnJoining"}
    }
    socket = ChatSocket(outsider, conversation.pk)
    await socket.communicator.connect()
    assert (await socket.receive())["code"] == "not_found"
    assert (await socket.communicator.receive_output())["code"] == 4404
    await get_channel_layer().group_send(
        replies.group_name(conversation.pk),
        {"type": "chat.event", "frame": {"type": "conversation.updated", "conversation": {}}},
    )
    assert await socket.communicator.receive_nothing(timeout=0.3)


async def test_replies_leave_no_channel_of_theirs_behind(owner, conversation, model_server):
    """Stop and catch-up reach a process on one channel of its own, whatever its replies."""
    from channels.layers import get_channel_layer

    model_server.config.tokens_per_second = 200
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Hello [[sim:tokens=20]]")
        await socket.until("reply.ended")
        await settle()
        after_one = set(get_channel_layer().channels)
        for _ in range(3):
            await socket.say("Again [[sim:tokens=20]]")
            await socket.until("reply.ended")
        await socket.say("Again", client_id="resent")
        await socket.until("reply.ended")
        await socket.say("Again", client_id="resent")  # a resent frame starts nothing
        await socket.until("sync")
        await socket.say("   ")  # refused before anything is stored
        await socket.until("error")
        await settle()
        after_six = set(get_channel_layer().channels)
    assert after_six <= after_one | {name for name in after_six if "replies." not in name}
    assert len([name for name in after_six if "replies." in name]) <= 1


async def test_a_snapshot_that_comes_after_the_reply_ended_is_not_forwarded(owner, conversation):
    """A catch-up answered late (the runner's snapshot crossing its end) must not reopen the
    reply on the page: the end already carried the whole text."""
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Hello")
        ended = await socket.until("reply.ended")
        reply_id = ended["message"]["id"]
        late = {
            "type": "reply.state",
            "reply_id": reply_id,
            "seq": 1,
            "content": "Part of",
            "status": Status.STREAMING,
        }
        layer = get_channel_layer()
        group = replies.group_name(conversation.pk)
        await layer.group_send(group, {"type": "reply.snapshot", "frame": late})
        marker = {"type": "conversation.updated", "conversation": {"id": str(conversation.pk)}}
        await replies.send_to_group(conversation.pk, marker)
        after = await socket.receive()
    assert after == marker
