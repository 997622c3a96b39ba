"""A chat socket to a real server process, over the network, as a browser tab holds one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from tests.conversations.chat_client import FrameLog


class RemoteSocket(FrameLog):
    def __init__(self, base_url: str, conversation_id: Any, cookie: str) -> None:
        self.url = base_url.replace("http", "ws", 1) + f"/ws/conversations/{conversation_id}/"
        # A page of the server itself: the same scheme, host and port.
        self.headers = {"Cookie": cookie, "Origin": base_url}
        self.frames: list[dict[str, Any]] = []
        self.connection: Any = None

    async def __aenter__(self) -> RemoteSocket:
        self.connection = await websockets.connect(
            self.url, additional_headers=self.headers, max_size=None
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.connection.close()

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
        self.frames.append(frame)
        return frame

    async def send(self, frame: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(frame))
