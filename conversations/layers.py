"""Helpers for the channel layers, through their public API only.

The layers (settings.CHANNEL_LAYERS): `LocalChannelLayer` below for one process, and with
`REDIS_URL` channels_redis's stock pub/sub layer, where a group send is
one PUBLISH and a process receives every message on one subscribed connection. Pub/sub keeps
no message for a channel nobody listens on, which suits what travels here: live events, with
the database and the reply's own runner as the record for catching up.

A pub/sub channel stays subscribed until a receive on it is cancelled; `close_channel` does
that for channels made by `new_channel` that are done with.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import secrets
import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer


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


class LocalChannelLayer(BaseChannelLayer):
    """The channel layer of one process (no REDIS_URL): channels' in-memory layer, with every
    operation in a time that does not grow with the process's sockets.

    The stock `InMemoryChannelLayer` looks for expired messages in every channel and group of the
    process on each receive: with a socket per open tab and a receive per message delivered, a
    delta to one tab costs a walk over all of them: an eighth of a process's event loop at 15
    replies a second (about 60 tabs), growing with the tabs (docs/benchmarks.md). Here a
    channel's expired messages are dropped when that channel is used, and a group's expired
    members when the group is sent to; once an expiry period, at a send, every channel's: a
    channel nobody receives on any more (its socket gone with a message left in it) is
    forgotten then. Otherwise the same contract (the channel layer specification, with the
    groups and flush extensions): messages are copied on send, a full channel raises
    `ChannelFull` (a group send skips it), an expired message is dropped and takes its channel
    out of every group.
    """

    extensions = ["groups", "flush"]
    # Every socket is in this process: what is sent to a conversation's sockets is handed to
    # them by the sender (`replies.send_to_group`), and not published here.
    one_process = True

    def __init__(
        self,
        expiry: int = 60,
        group_expiry: int = 86400,
        capacity: int = 100,
        channel_capacity: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            expiry=expiry, capacity=capacity, channel_capacity=channel_capacity, **kwargs
        )
        self.group_expiry = group_expiry
        self._channels: dict[str, _Channel] = {}
        self._groups: dict[str, dict[str, float]] = {}
        self._memberships: dict[str, set[str]] = {}
        self._sweep_at = time.time() + self.expiry

    @property
    def channels(self) -> set[str]:
        """The channels with a message or a receiver waiting."""
        return set(self._channels)

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        self._put(channel, message)

    async def receive(self, channel: str) -> dict[str, Any]:
        self.require_valid_channel_name(channel)
        queue = self._channel(channel)
        self._drop_expired(channel, queue)
        if queue.messages:
            message = queue.messages.popleft()[1]
            self._forget_if_idle(channel, queue)
            return message
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        queue.waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Handed over, then cancelled before it could be returned: not lost.
                self._hand(queue, waiter.result(), front=True)
            raise
        finally:
            if waiter in queue.waiters:
                queue.waiters.remove(waiter)
            self._forget_if_idle(channel, queue)

    async def new_channel(self, prefix: str = "specific.") -> str:
        return f"{prefix}.inmemory!{secrets.token_hex(8)}"

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        self._groups.setdefault(group, {})[channel] = time.time()
        self._memberships.setdefault(channel, set()).add(group)

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        self._leave(group, channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        members = self._groups.get(group)
        if not members:
            return
        joined_after = time.time() - self.group_expiry
        for channel, joined in list(members.items()):
            if joined < joined_after:
                self._leave(group, channel)
                continue
            with contextlib.suppress(ChannelFull):
                self._put(channel, message)

    async def flush(self) -> None:
        self._channels, self._groups, self._memberships = {}, {}, {}

    async def close(self) -> None:
        pass

    def _channel(self, channel: str) -> _Channel:
        queue = self._channels.get(channel)
        if queue is None:
            queue = self._channels[channel] = _Channel()
        return queue

    def _put(self, channel: str, message: dict[str, Any]) -> None:
        if time.time() >= self._sweep_at:
            self._sweep()
        queue = self._channel(channel)
        self._drop_expired(channel, queue)
        if len(queue.messages) >= self.get_capacity(channel):
            raise ChannelFull(channel)
        # Copied, as a layer that serializes it would hand it over.
        self._hand(queue, copy.deepcopy(message))

    def _hand(self, queue: _Channel, message: dict[str, Any], front: bool = False) -> None:
        """To a receiver waiting on the channel, else into its queue."""
        while queue.waiters:
            waiter = queue.waiters.popleft()
            if not waiter.done():
                waiter.set_result(message)
                return
        entry = (time.time() + self.expiry, message)
        if front:
            queue.messages.appendleft(entry)
        else:
            queue.messages.append(entry)

    def _drop_expired(self, channel: str, queue: _Channel) -> None:
        now = time.time()
        expired = False
        while queue.messages and queue.messages[0][0] < now:
            queue.messages.popleft()
            expired = True
        if expired:  # nobody reads it: out of every group, as the stock layer does
            for group in list(self._memberships.get(channel, ())):
                self._leave(group, channel)

    def _sweep(self) -> None:
        """Every channel's expired messages dropped, and the channels left idle forgotten."""
        for channel, queue in list(self._channels.items()):
            self._drop_expired(channel, queue)
            self._forget_if_idle(channel, queue)
        self._sweep_at = time.time() + self.expiry

    def _forget_if_idle(self, channel: str, queue: _Channel) -> None:
        if not queue.messages and not queue.waiters and self._channels.get(channel) is queue:
            del self._channels[channel]

    def _leave(self, group: str, channel: str) -> None:
        members = self._groups.get(group)
        if members is not None:
            members.pop(channel, None)
            if not members:
                del self._groups[group]
        groups = self._memberships.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self._memberships[channel]


class _Channel:
    """A channel's messages waiting to be received (with when they expire), and its receivers
    waiting for a message."""

    __slots__ = ("messages", "waiters")

    def __init__(self) -> None:
        self.messages: collections.deque[tuple[float, dict[str, Any]]] = collections.deque()
        self.waiters: collections.deque[asyncio.Future[dict[str, Any]]] = collections.deque()
