"""The Redis channel layer: channels_redis's pub/sub, its publishes sent in pipelines."""

from __future__ import annotations

import asyncio

from redis.asyncio.client import Pipeline

from conversations.layers import RedisPubSubChannelLayer


async def test_publishes_at_once_arrive_in_order_in_few_round_trips(redis_url, monkeypatch):
    round_trips = []
    execute = Pipeline.execute

    async def counted(self, *args, **kwargs):
        round_trips.append(len(self.command_stack))
        return await execute(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", counted)
    layer = RedisPubSubChannelLayer(hosts=[redis_url])
    try:
        channel = await layer.new_channel()
        await layer.group_add("room", channel)
        await asyncio.gather(
            *(layer.group_send("room", {"type": "n", "n": n}) for n in range(200)),
        )
        received = [(await layer.receive(channel))["n"] for _ in range(200)]
    finally:
        await layer.flush()
    assert received == list(range(200))
    assert sum(round_trips) == 200
    assert len(round_trips) < 20, "publishes waiting together travel together"


async def test_a_failed_publish_raises_to_each_sender():
    layer = RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:1/0"])  # nothing listens there
    results = await asyncio.gather(
        *(layer.send("specific.nobody", {"type": "n"}) for _ in range(3)), return_exceptions=True
    )
    await layer.flush()
    assert all(isinstance(result, Exception) for result in results)
