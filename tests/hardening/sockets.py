"""The chat socket through the whole ASGI application, as a browser reaches it."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chatsite.asgi import application
from tests.conversations.chat_client import ChatSocket
from tests.servers import session_cookie

HOST = "127.0.0.1"
ORIGIN = f"http://{HOST}"


class AppSocket(ChatSocket):
    """`ChatSocket`, but through `chatsite.asgi.application` with real headers: a browser's
    on a page of `origin`, that reached the site as `host` over `scheme` (`ws` or `wss`)."""

    def __init__(
        self,
        conversation_id: Any,
        *,
        cookie: str = "",
        origin: str = ORIGIN,
        host: str = HOST,
        scheme: str = "ws",
        headers: dict[str, str] | None = None,
    ) -> None:
        sent = {"host": host, **({"origin": origin} if origin else {}), **(headers or {})}
        if cookie:
            sent["cookie"] = cookie
        self.communicator = WebsocketCommunicator(
            over(scheme),
            f"/ws/conversations/{conversation_id}/",
            headers=[(name.encode(), value.encode()) for name, value in sent.items()],
        )
        self.frames: list[dict[str, Any]] = []


def over(scheme: str) -> Any:
    """The application as a server that sets the scope's scheme (`wss` behind its own TLS)
    hands it a socket; daphne leaves it out, which means `ws`."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        return await application({**scope, "scheme": scheme}, receive, send)

    return app


async def cookie_for(user: Any) -> str:
    return await database_sync_to_async(session_cookie)(user)


async def logged_in(user: Any, conversation_id: Any) -> AppSocket:
    return AppSocket(conversation_id, cookie=await cookie_for(user))
