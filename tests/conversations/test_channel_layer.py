"""The in-memory channel layer: expired messages still go, the sweep runs once a second."""

from __future__ import annotations

import asyncio

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
