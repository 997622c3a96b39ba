"""Channel layers: the in-memory one of a single process, and helpers for any layer.

With `REDIS_URL` the app uses channels_redis's pub/sub layer: a group send is one PUBLISH,
and every message reaches a process on its one subscribed connection, where the list-based
layer pays a Redis round trip per message received (docs/benchmarks.md). Pub/sub keeps no
message for a channel nobody listens on, which suits what travels here: live events, with
the database and the reply's own runner as the record for catching up.

A pub/sub channel stays subscribed until a receive on it is cancelled; `close_channel` does
that for channels made by `new_channel` that are done with.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from channels import layers
from channels_redis import pubsub


class InMemoryChannelLayer(layers.InMemoryChannelLayer):
    """channels' in-memory layer, with its expiry sweep run at most once a second.

    The parent walks every channel and every group membership on each `receive` and
    `group_send` to drop expired messages: with a few hundred open sockets each streaming
    deltas, that walk costs more than the delivery itself. Messages still expire (after the
    layer's `expiry`, 60 s by default), at most a second late.
    """

    sweep_interval = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._swept_at = float("-inf")

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept_at < self.sweep_interval:
            return
        self._swept_at = now
        super()._clean_expired()

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """The parent's send, with each message copied as the JSON-like data it is.

        The parent's `deepcopy` walks every value through its generic machinery: at a few
        thousand messages a second it cost more than the delivery. Each receiver still gets
        its own dicts and lists, as it would from a layer that serialises.
        """
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        try:
            queue.put_nowait((time.time() + self.expiry, _copied(message)))
        except asyncio.QueueFull:
            raise layers.ChannelFull(channel) from None

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """The parent's group send without a task per member: each send is a queue put."""
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            with contextlib.suppress(layers.ChannelFull):
                await self.send(channel, message)


def _copied(value: Any) -> Any:
    """A copy of JSON-like data: new dicts and lists, the same immutable leaves."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


async def close_channel(layer: Any, channel: str) -> None:
    """Stop listening on `channel`: a receive on it, cancelled, unsubscribes it."""
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    receiving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await receiving


async def close_layer(layer: Any) -> None:
    """Close a layer's connections before its event loop ends (tests, the terminal chat)."""
    if layer is not None and "flush" in getattr(layer, "extensions", ()):
        await layer.flush()


class _PipelinedShard(pubsub.RedisSingleShardConnection):
    """A shard connection that sends the publishes waiting for it as one pipeline.

    channels_redis sends one PUBLISH at a time under the shard's lock, a round trip each: a
    process streaming a few hundred replies queues its deltas behind one another. Here the
    publishes that arrive meanwhile go together, in their order, in one round trip.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def publish(self, channel: str, message: bytes) -> None:
        sent = asyncio.get_running_loop().create_future()
        self._waiting.append((channel, message, sent))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_waiting())
        await sent

    async def _send_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                async with self._lock:
                    self._ensure_redis()
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for channel, message, _sent in batch:
                            pipe.publish(channel, message)
                        await pipe.execute()
            except Exception as exc:
                for _channel, _message, sent in batch:
                    if not sent.done():
                        sent.set_exception(exc)
            else:
                for _channel, _message, sent in batch:
                    if not sent.done():
                        sent.set_result(None)


class _PipelinedLoopLayer(pubsub.RedisPubSubLoopLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shards = [_PipelinedShard(shard.host, self) for shard in self._shards]


class RedisPubSubChannelLayer(pubsub.RedisPubSubChannelLayer):
    """channels_redis's pub/sub layer whose publishes travel in pipelines (pinned 4.3)."""

    def _get_layer(self) -> Any:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = _PipelinedLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            pubsub._wrap_close(self, loop)
        return layer
