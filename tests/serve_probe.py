"""An ASGI app that answers every request with the class of the event loop running it
(tests/test_serve.py)."""

from __future__ import annotations

import asyncio
from typing import Any


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    loop = type(asyncio.get_running_loop())
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send(
        {"type": "http.response.body", "body": f"{loop.__module__}.{loop.__name__}".encode()}
    )
