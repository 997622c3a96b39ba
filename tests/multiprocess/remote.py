"""A chat socket to a real server process, over the network, as a browser tab holds one."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import websockets

ORIGIN = "http://127.0.0.1"


class RemoteSocket:
    def __init__(self, base_url: str, conversation_id: Any, cookie: str) -> None:
        self.url = base_url.replace("http", "ws", 1) + f"/ws/conversations/{conversation_id}/"
        self.headers = {"Cookie": cookie, "Origin": ORIGIN}
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

    async def say(self, content: str) -> None:
        await self.send({"type": "message.send", "client_id": uuid.uuid4().hex, "content": content})

    async def until(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        """Frames up to and including the first of `kind`."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    frame = await self.receive(timeout=timeout)
                    if frame["type"] == kind:
                        return frame
        except TimeoutError:
            seen = [frame["type"] for frame in self.frames]
            raise AssertionError(f"no {kind} frame within {timeout} s; got {seen}") from None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame["type"] == kind]

    def streamed_text(self, reply_id: int) -> str:
        """The reply as a client that follows the protocol would show it."""
        text, seq = "", 0
        for frame in self.frames:
            if frame.get("reply_id") != reply_id:
                continue
            if frame["type"] == "reply.state":
                text, seq = frame["content"], frame["seq"]
            elif frame["type"] == "reply.delta":
                assert frame["seq"] == seq + 1, f"delta {frame['seq']} after {seq}"
                text, seq = text + frame["text"], frame["seq"]
        return text
