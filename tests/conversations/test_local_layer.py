"""The one-process channel layer (`conversations.layers.LocalChannelLayer`) keeps the contract
of channels' in-memory layer: messages copied, in order, to one receiver; groups; a full channel
refused (skipped by a group send); expired messages dropped, taking their channel out of its
groups; expired group members left out; flush. And a receive cancelled after a message was
handed to it loses nothing."""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.exceptions import ChannelFull

from conversations.layers import LocalChannelLayer

pytestmark = pytest.mark.asyncio


async def nothing_for(layer: LocalChannelLayer, channel: str) -> None:
    """No message reaches `channel` (within 50 ms)."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.05)


async def test_messages_arrive_in_order_and_as_copies():
    layer = LocalChannelLayer()
    channel = await layer.new_channel()
    sent = {"type": "chat.event", "frame": {"text": "one"}}
    await layer.send(channel, sent)
    await layer.send(channel, {"type": "chat.event", "frame": {"text": "two"}})
    sent["frame"]["text"] = "changed after sending"
    assert (await layer.receive(channel))["frame"]["text"] == "one"
    assert (await layer.receive(channel))["frame"]["text"] == "two"


async def test_a_waiting_receiver_gets_the_next_message():
    layer = LocalChannelLayer()
    channel = await layer.new_channel()
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    await layer.send(channel, {"type": "x"})
    assert await asyncio.wait_for(receiving, 1) == {"type": "x"}


async def test_a_full_channel_refuses_a_send_and_a_group_send_skips_it():
    layer = LocalChannelLayer(capacity=2)
    full, other = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", full)
    await layer.group_add("room", other)
    await layer.send(full, {"type": "a"})
    await layer.send(full, {"type": "b"})
    with pytest.raises(ChannelFull):
        await layer.send(full, {"type": "c"})
    await layer.group_send("room", {"type": "to all"})
    assert await layer.receive(other) == {"type": "to all"}
    assert [await layer.receive(full), await layer.receive(full)] == [{"type": "a"}, {"type": "b"}]


async def test_groups_reach_their_members_only():
    layer = LocalChannelLayer()
    inside, left, outside = [await layer.new_channel() for _ in range(3)]
    await layer.group_add("room", inside)
    await layer.group_add("room", left)
    await layer.group_discard("room", left)
    await layer.group_send("room", {"type": "hello"})
    assert await layer.receive(inside) == {"type": "hello"}
    for channel in (left, outside):
        await nothing_for(layer, channel)


async def test_an_expired_message_is_dropped_and_its_channel_leaves_its_groups(monkeypatch):
    layer = LocalChannelLayer(expiry=10)
    silent, listening = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", silent)
    await layer.group_add("room", listening)
    await layer.group_send("room", {"type": "old"})
    assert await layer.receive(listening) == {"type": "old"}
    later = time.time() + 11
    monkeypatch.setattr("conversations.layers.time.time", lambda: later)
    # The silent channel's message expired unread: dropped, and the channel is out of the
    # group (nobody reads it), as with channels' in-memory layer.
    await layer.send(silent, {"type": "new"})
    assert await layer.receive(silent) == {"type": "new"}
    await layer.group_send("room", {"type": "to the group"})
    assert await layer.receive(listening) == {"type": "to the group"}
    await nothing_for(layer, silent)


async def test_group_members_expire(monkeypatch):
    layer = LocalChannelLayer(group_expiry=100)
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    later = time.time() + 101
    monkeypatch.setattr("conversations.layers.time.time", lambda: later)
    await layer.group_send("room", {"type": "too late"})
    await nothing_for(layer, channel)


async def test_flush_forgets_every_message_and_group():
    layer = LocalChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    await layer.send(channel, {"type": "kept?"})
    await layer.flush()
    await layer.group_send("room", {"type": "nobody"})
    await nothing_for(layer, channel)


async def test_a_receive_cancelled_once_handed_a_message_leaves_it_for_the_next():
    layer = LocalChannelLayer()
    channel = await layer.new_channel()
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    await layer.send(channel, {"type": "first"})
    receiving.cancel()  # before the receiving task ran again to take it
    with pytest.raises(asyncio.CancelledError):
        await receiving
    assert await asyncio.wait_for(layer.receive(channel), 1) == {"type": "first"}


async def test_an_idle_channel_leaves_nothing_behind():
    layer = LocalChannelLayer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "x"})
    await layer.receive(channel)
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    receiving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiving
    await layer.group_add("room", channel)
    await layer.group_discard("room", channel)
    assert layer.channels == set()
    await layer.group_send("room", {"type": "to nobody"})
    assert layer.channels == set()


async def test_a_channel_nobody_receives_on_any_more_is_forgotten_once_its_messages_expire(
    monkeypatch,
):
    """A socket that went away with a message left in its channel (handed to its last receive
    as it was cancelled) is never used again: without the sweep its channel stayed for good,
    one for every such socket."""
    layer = LocalChannelLayer(expiry=10)
    gone, alive = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", gone)
    await layer.send(gone, {"type": "left behind"})
    later = time.time() + 11
    monkeypatch.setattr("conversations.layers.time.time", lambda: later)
    await layer.send(alive, {"type": "another socket's"})
    assert layer.channels == {alive}
    await layer.group_send("room", {"type": "to nobody"})
    assert layer.channels == {alive}
