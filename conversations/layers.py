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
