"""A small driver for the chat socket in tests: connect, send, collect until a reply ends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.sessions import CookieMiddleware
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone

from conversations import replies
from conversations.models import Message, Role, Status
from conversations.routing import websocket_urlpatterns

router = URLRouter(websocket_urlpatterns)


class FrameLog:
    """What a test client of the chat socket does with frames, whatever carries them."""

    frames: list[dict[str, Any]]

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        raise NotImplementedError

    async def send(self, frame: dict[str, Any]) -> None:
        raise NotImplementedError

    async def say(self, content: str, client_id: str | None = None) -> str:
        client_id = client_id or uuid.uuid4().hex
        await self.send({"type": "message.send", "client_id": client_id, "content": content})
        return client_id

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


class ChatSocket(FrameLog):
    def __init__(
        self, user: Any, conversation_id: Any, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self.communicator = WebsocketCommunicator(
            CookieMiddleware(router), f"/ws/conversations/{conversation_id}/", headers=headers
        )
        self.communicator.scope["user"] = user
        self.frames: list[dict[str, Any]] = []

    async def __aenter__(self) -> ChatSocket:
        connected, _ = await self.communicator.connect()
        assert connected
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.communicator.disconnect()

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        frame = await self.communicator.receive_json_from(timeout=timeout)
        self.frames.append(frame)
        return frame

    async def send(self, frame: dict[str, Any]) -> None:
        await self.communicator.send_json_to(frame)


@database_sync_to_async
def saved(conversation: Any) -> list[Message]:
    """The conversation's messages as stored, in order."""
    return list(conversation.messages.order_by("id"))


async def settle() -> None:
    """Wait until every reply this process started has ended."""
    async with asyncio.timeout(15):
        await replies.wait_for_replies()


@database_sync_to_async
def half_written_reply(
    conversation: Any, *, lease_seconds: float | None, runner_channel: str = ""
) -> Message:
    """A question and a reply left `streaming` with half its text; its lease ends in
    `lease_seconds` (in the past when negative; None: it never had one)."""
    Message.objects.create(conversation=conversation, role=Role.USER, content="Question")
    lease = None if lease_seconds is None else timezone.now() + timedelta(seconds=lease_seconds)
    return Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        status=Status.STREAMING,
        content="Half an ans",
        lease_expires_at=lease,
        runner_channel=runner_channel,
    )


@database_sync_to_async
def session_cookie(user) -> bytes:
    """The cookie of a session logged in as `user`, as the login page would leave it."""
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


def site_socket(conversation_id, cookie: bytes | None) -> WebsocketCommunicator:
    """A socket through the site's own stack (chatsite/asgi.py), as a browser opens it."""
    from chatsite.asgi import application

    headers = [(b"host", b"testserver"), (b"origin", b"http://testserver")]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, f"/ws/conversations/{conversation_id}/", headers)
