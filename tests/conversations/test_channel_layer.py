"""The in-memory channel layer: expired messages still go, the sweep runs once a second."""

from __future__ import annotations

import asyncio

import pytest
from channels import layers as channels_layers

from conversations.layers import InMemoryChannelLayer


async def test_expired_messages_are_still_dropped():
    layer = InMemoryChannelLayer(expiry=0.05)
    layer.sweep_interval = 0.1
    await layer.group_add("room", "specific.inmemory!gone")
    await layer.send("specific.inmemory!gone", {"type": "hello"})
    await asyncio.sleep(0.15)
    await layer.group_send("room", {"type": "again"})  # sweeps first, then delivers
    assert "specific.inmemory!gone" not in layer.groups.get("room", {})
    assert "specific.inmemory!gone" not in layer.channels


async def test_the_sweep_runs_at_most_once_per_interval(monkeypatch):
    sweeps = []
    parent = channels_layers.InMemoryChannelLayer._clean_expired
    monkeypatch.setattr(
        channels_layers.InMemoryChannelLayer,
        "_clean_expired",
        lambda self: sweeps.append(1) or parent(self),
    )
    layer = InMemoryChannelLayer()
    await layer.group_add("room", "specific.inmemory!a")
    for _ in range(200):
        await layer.group_send("room", {"type": "delta"})
        await layer.receive("specific.inmemory!a")
    assert len(sweeps) == 1


async def test_each_member_of_a_group_gets_its_own_copy_in_order():
    layer = InMemoryChannelLayer()
    for name in ("a", "b"):
        await layer.group_add("room", f"specific.inmemory!{name}")
    frame = {"type": "chat.event", "frame": {"seq": 1, "items": [{"text": "안녕"}]}}
    await layer.group_send("room", frame)
    await layer.group_send("room", {"type": "chat.event", "frame": {"seq": 2}})
    first_a = await layer.receive("specific.inmemory!a")
    first_b = await layer.receive("specific.inmemory!b")
    assert first_a == first_b == frame
    first_a["frame"]["items"][0]["text"] = "changed by a"
    assert first_b["frame"]["items"][0]["text"] == "안녕"
    assert frame["frame"]["items"][0]["text"] == "안녕"
    assert (await layer.receive("specific.inmemory!a"))["frame"]["seq"] == 2


async def test_a_full_member_does_not_stop_the_others():
    layer = InMemoryChannelLayer(capacity=1)
    await layer.group_add("room", "specific.inmemory!full")
    await layer.group_add("room", "specific.inmemory!free")
    await layer.send("specific.inmemory!full", {"type": "waiting"})
    await layer.group_send("room", {"type": "news"})
    assert (await layer.receive("specific.inmemory!free"))["type"] == "news"
    assert (await layer.receive("specific.inmemory!full"))["type"] == "waiting"
    await layer.send("specific.inmemory!free", {"type": "one"})
    with pytest.raises(channels_layers.ChannelFull):
        await layer.send("specific.inmemory!free", {"type": "two"})
