"""The in-memory channel layer of one-process deployments, with a cheaper expiry sweep.

channels' `InMemoryChannelLayer` walks every channel and every group membership on each
`receive` and `group_send` to drop expired messages: with a few hundred open sockets each
streaming deltas, that walk costs more than the delivery itself. Here it runs at most once a
second; messages still expire (after the layer's `expiry`, 60 s by default), at most a second
late.
"""

from __future__ import annotations

import time

from channels import layers


class InMemoryChannelLayer(layers.InMemoryChannelLayer):
    sweep_interval = 1.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._swept_at = float("-inf")

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept_at < self.sweep_interval:
            return
        self._swept_at = now
        super()._clean_expired()
