"""The chat socket through the whole ASGI application, as a browser reaches it."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chatsite.asgi import application
from tests.conversations.chat_client import ChatSocket
from tests.servers import session_cookie

ORIGIN = "http://127.0.0.1"


class AppSocket(ChatSocket):
    """`ChatSocket`, but through `chatsite.asgi.application` with real headers."""

    def __init__(self, conversation_id: Any, *, cookie: str = "", origin: str = ORIGIN) -> None:
        headers = [(b"host", b"127.0.0.1")]
        if origin:
            headers.append((b"origin", origin.encode()))
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        self.communicator = WebsocketCommunicator(
            application, f"/ws/conversations/{conversation_id}/", headers=headers
        )
        self.frames: list[dict[str, Any]] = []


async def cookie_for(user: Any) -> str:
    return await database_sync_to_async(session_cookie)(user)


async def logged_in(user: Any, conversation_id: Any) -> AppSocket:
    return AppSocket(conversation_id, cookie=await cookie_for(user))
