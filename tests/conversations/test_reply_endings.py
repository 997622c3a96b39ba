"""Every way a reply ends is honest: a failing channel layer, a cancelled task, a stop before
the first token, a final save that fails. The reply keeps being produced and saved, ends with
its true status, and the conversation answers the next message."""

from __future__ import annotations

import asyncio
import shutil
import socket as sockets
import subprocess
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.utils import timezone

from conversations import replies, services
from conversations.models import Message, Role, Status

from .chat_client import ChatSocket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer"),
]


class FlakyLayer(InMemoryChannelLayer):
    """The in-memory layer, failing every send while `failing` is set (a Redis outage)."""

    failing = False

    async def send(self, channel, message):
        if self.failing:
            raise ConnectionError("the channel layer is down")
        await super().send(channel, message)

    async def group_send(self, group, message):
        if self.failing:
            raise ConnectionError("the channel layer is down")
        await super().group_send(group, message)

    async def group_add(self, group, channel):
        if self.failing:
            raise ConnectionError("the channel layer is down")
        await super().group_add(group, channel)


class AnnouncementsFail(InMemoryChannelLayer):
    """The in-memory layer, timing out on the group message that announces a reply's start
    (an overwhelmed Redis: the publish waits its turn for longer than the publish timeout)."""

    async def group_send(self, group, message):
        frames = message.get("frames") or [message.get("frame") or {}]
        if any(frame.get("type") == "message.created" for frame in frames):
            raise TimeoutError
        await super().group_send(group, message)


@pytest.fixture
def flaky_layer(settings):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "tests.conversations.test_reply_endings.FlakyLayer"}
    }


@database_sync_to_async
def stored_reply(conversation) -> Message:
    return conversation.messages.filter(role=Role.ASSISTANT).order_by("-id").first()


async def until_stored_end(conversation, timeout: float = 20) -> Message:
    async with asyncio.timeout(timeout):
        while True:
            reply = await stored_reply(conversation)
            if reply is not None and reply.status != Status.STREAMING:
                return reply
            await asyncio.sleep(0.05)


@pytest.mark.usefixtures("flaky_layer")
async def test_a_layer_that_fails_mid_reply_costs_the_tabs_a_moment_not_the_reply(
    owner, conversation, model_server
):
    """Before, the publisher's exception skipped the reply's end: it stayed `streaming` for
    good and the conversation refused every new message."""
    model_server.config.tokens_per_second = 50
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Tell me a story [[sim:tokens=60]]")
        await socket.until("reply.delta")
        layer = get_channel_layer()
        layer.failing = True
        await asyncio.sleep(0.5)
        layer.failing = False
        ended = await socket.until("reply.ended", timeout=15)
        reply = await stored_reply(conversation)
        assert reply.status == ended["message"]["status"] == Status.COMPLETE
        assert socket.streamed_text(reply.pk) == reply.content != ""
        states = [f for f in socket.of_type("reply.state") if f["reply_id"] == reply.pk]
        assert states, "the tabs caught up with a state once the layer was back"
        await socket.say("And another")
        again = await socket.until("reply.ended", timeout=15)
    assert again["message"]["status"] == Status.COMPLETE


@pytest.mark.usefixtures("flaky_layer")
async def test_a_reply_that_ends_while_the_layer_is_down_is_saved_and_announced_later(
    owner, conversation, model_server
):
    model_server.config.tokens_per_second = 50
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Tell me a story [[sim:tokens=30]]")
        await socket.until("reply.delta")
        layer = get_channel_layer()
        layer.failing = True
        reply = await until_stored_end(conversation)
        assert reply.status == Status.COMPLETE and reply.completion_tokens
        assert reply.lease_expires_at is None and reply.runner_channel == ""
        # The conversation answers even before the layer is back (its row says so).
        accepted = await database_sync_to_async(services.streaming_reply)(conversation.pk)
        assert accepted is None
        layer.failing = False
        ended = await socket.until("reply.ended", timeout=15)
    assert ended["message"]["content"] == reply.content


@pytest.fixture
def redis_on_a_free_port(settings):
    """A redis-server of the test's own, stopped and started again by the test."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (Debian's redis-server package)"
    with sockets.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    class Server:
        process: subprocess.Popen | None = None

        def start(self) -> None:
            self.process = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    sockets.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    return
                except OSError:
                    time.sleep(0.05)
            raise AssertionError("redis-server did not start")

        def stop(self) -> None:
            if self.process is not None:
                self.process.terminate()
                self.process.wait(10)
                self.process = None

    server = Server()
    server.start()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]},
        }
    }
    yield server
    server.stop()


async def test_redis_stopped_and_started_again_mid_reply(
    owner, conversation, model_server, redis_on_a_free_port, settings
):
    """A real Redis goes away for two seconds while a reply streams."""
    settings.CHAT_LEASE_SECONDS = 3
    model_server.config.tokens_per_second = 20
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Tell me a story [[sim:tokens=80]]")
        await socket.until("reply.delta")
        await asyncio.to_thread(redis_on_a_free_port.stop)
        await asyncio.sleep(2)
        await asyncio.to_thread(redis_on_a_free_port.start)
        reply = await until_stored_end(conversation, timeout=30)
        assert reply.status == Status.COMPLETE and reply.completion_tokens
        # The tab hears the end: from the layer once it is back, or from the database.
        ended = await socket.until("reply.ended", timeout=30)
        assert ended["message"]["status"] == Status.COMPLETE
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Are you there?")
        again = await socket.until("reply.ended", timeout=15)
    assert again["message"]["status"] == Status.COMPLETE


async def test_a_cancelled_reply_is_saved_as_interrupted_with_a_sentence(
    owner, conversation, model_server
):
    """A cancellation that is not a stop (the process shutting down) was saved as `error`
    with an empty message."""
    model_server.config.tokens_per_second = 20
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Tell me a story [[sim:tokens=100]]")
        await socket.until("reply.delta")
        [runner] = replies.running_replies().values()
        runner.task.cancel()
        ended = await socket.until("reply.ended")
    reply = await stored_reply(conversation)
    assert reply.status == ended["message"]["status"] == Status.INTERRUPTED
    assert reply.error and reply.content
    assert replies.running_replies() == {}


async def test_a_stop_before_the_reply_starts_is_honoured(owner, conversation, model_server):
    """A stop that reaches the process between the reply's row and its task (the moment a
    reply is announced) was dropped: the answer was written in full."""
    prepared = await database_sync_to_async(services.post_message)(
        user=owner,
        conversation_id=conversation.pk,
        content="Hello",
        client_id="early",
        runner_channel=await replies.control_channel(),
    )
    requests = model_server.config.request_count
    await replies.request_stop(prepared.reply)
    for _ in range(500):  # the control channel hears it: no runner yet
        if prepared.reply.pk in replies._early_stops:
            break
        await asyncio.sleep(0.01)
    assert prepared.reply.pk in replies._early_stops
    await replies._launch(prepared, None)
    await replies.wait_for_replies()
    reply = await stored_reply(conversation)
    assert reply.status == Status.STOPPED and reply.content == ""
    assert model_server.config.request_count == requests


async def test_a_stop_before_the_first_token_is_honoured(owner, conversation, model_server):
    model_server.config.first_token_delay = 3.0
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Hello")
        created = await socket.until("message.created")
        while created["message"]["role"] != Role.ASSISTANT:
            created = await socket.until("message.created")
        started = time.monotonic()
        await socket.send({"type": "reply.stop"})
        ended = await socket.until("reply.ended")
    assert ended["message"]["status"] == Status.STOPPED
    assert time.monotonic() - started < 2


async def test_the_teardown_runs_when_the_final_save_fails(
    owner, conversation, model_server, monkeypatch
):
    """A failed final save left the reply in the running set and its lease renewed for ever:
    the conversation could never answer again. Now it leaves both, and its lease runs out."""

    def failing_save(self, outcome):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(replies.ReplyRunner, "end", failing_save)
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Hello")
        await socket.until("reply.delta")
        await replies.wait_for_replies()
    assert replies.running_replies() == {}
    assert not replies.progress_saves().runners
    reply = await stored_reply(conversation)
    await database_sync_to_async(Message.objects.filter(pk=reply.pk).update)(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert await database_sync_to_async(services.sweep_orphaned_replies)(conversation.pk) == 1


def test_a_sweep_and_the_replys_own_end_cannot_overwrite_each_other(owner, conversation):
    """One function ends a reply, guarded on `streaming`: the second to come changes nothing."""
    Message.objects.create(conversation=conversation, role=Role.USER, content="Question")
    reply = Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, status=Status.STREAMING
    )
    rows = Message.objects.filter(pk=reply.pk)
    assert services.end_replies(rows, status=Status.COMPLETE, content="All of it") == 1
    assert services.end_replies(rows, status=Status.INTERRUPTED, content="") == 0
    reply.refresh_from_db()
    assert (reply.status, reply.content) == (Status.COMPLETE, "All of it")


async def test_an_announcement_the_layer_fails_costs_neither_the_socket_nor_the_reply(
    owner, conversation, model_server, settings
):
    """Under load the layer's publish of a reply's start timed out, the error rose out of the
    socket's message handler and daphne closed the socket (1011): the sender lost its
    connection while its reply was being written. Now the sender's socket tells its own
    client, and the reply streams on."""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "tests.conversations.test_reply_endings.AnnouncementsFail"}
    }
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Hello")
        created = [(await socket.until("message.created"))["message"]["role"] for _ in range(2)]
        ended = await socket.until("reply.ended")
        await socket.send({"type": "subscribe", "after_id": None})
        await socket.until("sync")
    assert created == [Role.USER, Role.ASSISTANT]
    assert ended["message"]["status"] == Status.COMPLETE
    assert socket.streamed_text(ended["message"]["id"]) == ended["message"]["content"] != ""
