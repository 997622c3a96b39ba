"""Helpers for the channel layers, through their public API only.

The layers themselves are the stock ones (settings.CHANNEL_LAYERS): channels' in-memory layer
for one process, and with `REDIS_URL` channels_redis's pub/sub layer, where a group send is
one PUBLISH and a process receives every message on one subscribed connection. Pub/sub keeps
no message for a channel nobody listens on, which suits what travels here: live events, with
the database and the reply's own runner as the record for catching up.

A pub/sub channel stays subscribed until a receive on it is cancelled; `close_channel` does
that for channels made by `new_channel` that are done with.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


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
