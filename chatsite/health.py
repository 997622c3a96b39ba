"""`/healthz`: is this process able to serve? It asks the database and the channel layer.

For a load balancer or an orchestrator: 200 with `{"status": "ok", ...}` when both answer,
503 naming what failed otherwise. It needs no login, is exempt from the HTTPS redirect (a probe
often speaks plain HTTP to the process), and says nothing about the failure beyond its kind:
no host names, no connection strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from conversations.layers import close_channel

logger = logging.getLogger(__name__)

# A probe must answer well within its own timeout, even when a backend hangs.
CHECK_TIMEOUT_SECONDS = 3.0


@database_sync_to_async
def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def check_channel_layer() -> None:
    """A message to a fresh channel of this process, and back: Redis (or memory) round trip."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")
    channel = await layer.new_channel("healthz.")
    try:
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.ping", "token": token})
        message = await layer.receive(channel)
        if message.get("token") != token:
            raise RuntimeError("the channel layer returned another message")
    finally:
        # Unsubscribing needs the layer too: a broken one must not hold the probe.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                await close_channel(layer, channel)


async def _run(name: str, check: object) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await check()  # type: ignore[operator]
    except Exception as exc:
        # The kind of failure only: a message could carry a host name or a password.
        logger.warning("healthz: the %s check failed: %s", name, type(exc).__name__)
        return f"failed ({type(exc).__name__})"
    return "ok"


@login_not_required
@never_cache
@require_safe
async def healthz(request: HttpRequest) -> JsonResponse:
    database, channel_layer = await asyncio.gather(
        _run("database", check_database), _run("channel layer", check_channel_layer)
    )
    healthy = database == "ok" and channel_layer == "ok"
    return JsonResponse(
        {
            "status": "ok" if healthy else "unavailable",
            "database": database,
            "channel_layer": channel_layer,
        },
        status=200 if healthy else 503,
    )
