"""The Redis channel layer: channels_redis's stock pub/sub layer, as the app uses it."""

from __future__ import annotations

import asyncio

from channels_redis.pubsub import RedisPubSubChannelLayer


async def test_publishes_at_once_arrive_in_order(redis_url):
    layer = RedisPubSubChannelLayer(hosts=[redis_url])
    try:
        channel = await layer.new_channel()
        await layer.group_add("room", channel)
        for n in range(200):
            await layer.group_send("room", {"type": "n", "n": n})
        received = [(await layer.receive(channel))["n"] for _ in range(200)]
    finally:
        await layer.flush()
    assert received == list(range(200))


async def test_a_failed_publish_raises_to_each_sender():
    layer = RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:1/0"])  # nothing listens there
    results = await asyncio.gather(
        *(layer.send("specific.nobody", {"type": "n"}) for _ in range(3)), return_exceptions=True
    )
    await layer.flush()
    assert all(isinstance(result, Exception) for result in results)
