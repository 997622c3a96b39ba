"""What a process sends to a group (a conversation's: a reply's start, deltas and end; a user's:
a conversation's new title) reaches the sockets of that process at once, in the order it was
sent, not through the channel layer; the layer carries it to the other processes' sockets, once
each."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.test import override_settings

from conversations import replies
from conversations.accounts import user_group
from conversations.consumers import ChatConsumer
from conversations.models import Conversation, Status

from .chat_client import ChatSocket, saved, settle

pytestmark = [pytest.mark.django_db(transaction=True)]

STOCK_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
LOCAL_LAYER = {"default": {"BACKEND": "conversations.layers.LocalChannelLayer"}}


def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The events sent to groups through the layer from now on."""
    layer = get_channel_layer()
    events: list[dict[str, Any]] = []
    original = layer.group_send

    async def group_send(group: str, message: dict[str, Any]) -> None:
        events.append(message)
        await original(group, message)

    monkeypatch.setattr(layer, "group_send", group_send)
    return events


def frames_of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        frame
        for event in events
        for frame in event.get("frames") or [event.get("frame") or {}]
        if frame.get("type") == kind
    ]


def shown(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[int, int]]:
    """How many times a socket handled each delta (its reply and `seq`)."""
    handled: Counter[tuple[int, int]] = Counter()
    original = ChatConsumer.apply_delta

    async def apply_delta(self: ChatConsumer, frame: dict[str, Any]) -> None:
        handled[(id(self), frame["seq"])] += 1
        await original(self, frame)

    monkeypatch.setattr(ChatConsumer, "apply_delta", apply_delta)
    return handled


@override_settings(CHANNEL_LAYERS=LOCAL_LAYER)
async def test_with_the_one_process_layer_a_reply_goes_straight_to_the_sockets(
    owner, conversation, model_server, monkeypatch
):
    model_server.config.tokens_per_second = 200
    events = published(monkeypatch)
    handled = shown(monkeypatch)
    first, second = ChatSocket(owner, conversation.pk), ChatSocket(owner, conversation.pk)
    async with first, second:
        await first.until("ready")
        await second.until("ready")
        await first.say("Tell me about noodles")
        await first.until("reply.ended")
        await second.until("reply.ended")
    await settle()
    _, reply = await saved(conversation)
    assert reply.status == Status.COMPLETE
    for socket in (first, second):
        assert socket.streamed_text(reply.pk) == reply.content
    deltas = first.of_type("reply.delta")
    assert len(deltas) > 5 and len(second.of_type("reply.delta")) == len(deltas)
    assert [f["message"]["role"] for f in first.of_type("message.created")] == ["user", "assistant"]
    assert len(second.of_type("message.created")) == 2
    assert len(first.of_type("reply.ended")) == len(second.of_type("reply.ended")) == 1
    assert [f["type"] for f in first.of_type("conversation.updated")] == ["conversation.updated"]
    assert events == []  # nothing went through the layer
    assert set(handled.values()) == {1} and len(handled) == 2 * len(deltas)


@override_settings(CHANNEL_LAYERS=STOCK_LAYER)
async def test_across_processes_deltas_are_published_once_and_a_socket_here_shows_each_once(
    owner, conversation, model_server, monkeypatch
):
    """The layer's copy, marked as this process's, is for the other processes' sockets: a
    socket here passes over it (it had the delta from the runner)."""
    model_server.config.tokens_per_second = 200
    layer = get_channel_layer()
    elsewhere = await layer.new_channel()  # a socket of another process, as the layer sees it
    await layer.group_add(replies.group_name(conversation.pk), elsewhere)
    events = published(monkeypatch)
    handled = shown(monkeypatch)
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Tell me about rice")
        await socket.until("reply.ended")
    await settle()
    _, reply = await saved(conversation)
    deltas = socket.of_type("reply.delta")
    assert socket.streamed_text(reply.pk) == reply.content
    assert set(handled.values()) == {1} and len(handled) == len(deltas)
    published_deltas = frames_of(events, "reply.delta")
    assert [d["seq"] for d in published_deltas] == [d["seq"] for d in deltas]
    assert len(frames_of(events, "message.created")) == 2
    assert len(frames_of(events, "reply.ended")) == 1
    assert len(frames_of(events, "conversation.updated")) == 1  # the title, to the sidebars
    assert all(replies.sent_here(e) for e in events)
    assert len(socket.of_type("conversation.updated")) == 1
    assert len(socket.of_type("message.created")) == 2 and len(socket.of_type("reply.ended")) == 1
    # The other process's socket gets them all, in order, with the reply's end.
    text, seq = "", 0
    while True:
        event = await layer.receive(elsewhere)
        for frame in event.get("frames") or [event["frame"]]:
            if frame["type"] == "reply.delta":
                assert frame["seq"] == seq + 1
                text, seq = text + frame["text"], frame["seq"]
        if event.get("frame", {}).get("type") == "reply.ended":
            break
    assert text == reply.content


@override_settings(CHANNEL_LAYERS=LOCAL_LAYER)
async def test_a_socket_that_goes_stops_getting_deltas_and_the_reply_goes_on(
    owner, conversation, model_server
):
    model_server.config.tokens_per_second = 100
    async with ChatSocket(owner, conversation.pk) as staying:
        async with ChatSocket(owner, conversation.pk) as leaving:
            await leaving.until("ready")
            await staying.until("ready")
            await staying.say("Tell me a long story [[sim:tokens=60]]")
            await leaving.until("reply.delta")
        group = replies.group_name(conversation.pk)
        assert len(replies._listeners()[group]) == 1  # the one still open
        await staying.until("reply.ended")
    await settle()
    _, reply = await saved(conversation)
    assert reply.status == Status.COMPLETE
    assert staying.streamed_text(reply.pk) == reply.content
    assert replies._listeners() == {}


async def test_what_comes_while_a_socket_connects_is_held_until_it_is_ready(
    owner, conversation, model_server, monkeypatch
):
    """A reply that starts while a tab's socket connects, after it looked for one: the tab
    shows it from its start, after `ready`, as it would have through the layer's queue."""
    model_server.config.tokens_per_second = 100
    layer = get_channel_layer()
    gate, held_at_gate = asyncio.Event(), asyncio.Event()
    original = layer.group_add

    async def group_add(group: str, channel: str) -> None:
        if group == user_group(owner.pk) and armed:
            held_at_gate.set()
            await gate.wait()  # the connect, past its look for a streaming reply
        await original(group, channel)

    armed = False
    monkeypatch.setattr(layer, "group_add", group_add)
    async with ChatSocket(owner, conversation.pk) as asking:
        await asking.until("ready")
        armed = True
        async with ChatSocket(owner, conversation.pk) as connecting:
            await asyncio.wait_for(held_at_gate.wait(), 5)
            await asking.say("Tell me about dumplings [[sim:tokens=40]]")
            await asking.until("reply.delta")
            gate.set()
            await connecting.until("reply.ended")
    await settle()
    _, reply = await saved(conversation)
    kinds = [frame["type"] for frame in connecting.frames]
    assert kinds[:3] == ["ready", "message.created", "message.created"]
    assert kinds.index("reply.delta") < kinds.index("reply.ended")
    assert connecting.streamed_text(reply.pk) == reply.content


class NoOneElsewhere(InMemoryChannelLayer):
    """A layer whose group messages are for other processes' sockets only: none reach a
    socket of this process."""

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert replies.sent_here(message)


@override_settings(
    CHANNEL_LAYERS={"default": {"BACKEND": "tests.conversations.test_direct_deltas.NoOneElsewhere"}}
)
async def test_a_process_sockets_see_what_it_sends_in_the_order_it_sends_it(
    owner, conversation, model_server
):
    """A reply's title goes to its owner's group and its deltas to the conversation's: both
    reach this process's sockets in the order they were sent, whenever the layer carries
    them, the sidebar of a tab showing another conversation too. (The title came through the
    layer: on Redis after a short reply's end.)"""
    model_server.config.tokens_per_second = 200
    other = await database_sync_to_async(Conversation.objects.create)(user=owner)
    async with ChatSocket(owner, conversation.pk) as socket, ChatSocket(owner, other.pk) as tab:
        await socket.until("ready")
        await tab.until("ready")
        await socket.say("Tell me about soup [[sim:tokens=5]]")
        ended = await socket.until("reply.ended")
        titled = await tab.until("conversation.updated")
    kinds = [frame["type"] for frame in socket.frames]
    assert kinds[:4] == ["ready", "message.created", "message.created", "conversation.updated"]
    assert kinds.index("reply.delta") < kinds.index("reply.ended")
    assert ended["message"]["status"] == Status.COMPLETE
    assert titled["conversation"]["id"] == str(conversation.pk)
