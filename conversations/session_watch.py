"""A chat socket whose session ended without its hearing of it is closed at the next look.

A session that ends (a logout, a new password, an account turned off) closes its sockets at
once, through the channel layer (`accounts.py`, `ChatConsumer.session_ended`). A socket misses
that event when the layer is down at the moment (Redis restarting), and a session that simply
runs out (`SESSION_COOKIE_AGE`) sends none. So every `CHAT_SESSION_CHECK_SECONDS` a process
looks again at its sockets' sessions the way Django checks a page's (`auth.get_user`: the
session is there and unexpired, its password hash is still the user's), `SESSIONS_PER_TRIP`
sessions a trip to the database thread, and closes the sockets of those that ended.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import defaultdict
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest

from .database import in_database
from .replies import one_per_loop

if TYPE_CHECKING:
    from .consumers import ChatConsumer

logger = logging.getLogger(__name__)

# Sessions checked in one trip to the database thread: a few milliseconds of it, so a message
# sent meanwhile does not wait behind a process's every session.
SESSIONS_PER_TRIP = 50


class SessionWatch:
    """One event loop's signed-in sockets, and the task that looks at their sessions."""

    def __init__(self) -> None:
        self.sockets: weakref.WeakSet[ChatConsumer] = weakref.WeakSet()
        self.task: asyncio.Task[None] | None = None

    def add(self, socket: ChatConsumer) -> None:
        self.sockets.add(socket)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self.run())

    def discard(self, socket: ChatConsumer) -> None:
        self.sockets.discard(socket)
        if not self.sockets and self.task is not None:
            self.task.cancel()  # nothing to look at: no task left pending on a loop's end
            self.task = None

    async def run(self) -> None:
        while self.sockets:
            await asyncio.sleep(settings.CHAT_SESSION_CHECK_SECONDS)
            try:
                await self.check()
            except Exception:  # the next look tries again
                logger.exception("checking the chat sockets' sessions failed")

    async def check(self) -> None:
        """Close the sockets whose session ended."""
        by_session: defaultdict[str, list[ChatConsumer]] = defaultdict(list)
        for socket in list(self.sockets):
            key = socket.session_key()
            if key is not None and not socket.signed_out:
                by_session[key].append(socket)
        sessions = [(key, sockets[0].scope["user"].pk) for key, sockets in by_session.items()]
        for start in range(0, len(sessions), SESSIONS_PER_TRIP):
            for key in await in_database(ended)(sessions[start : start + SESSIONS_PER_TRIP]):
                for socket in by_session[key]:
                    await socket.session_gone()


watch = one_per_loop(SessionWatch)


def ended(sessions: list[tuple[str, Any]]) -> list[str]:
    """Of these (session key, user id) pairs, the keys whose session no longer signs that user
    in."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    gone = []
    for key, user_id in sessions:
        request = HttpRequest()
        request.session = store(key)
        user = auth.get_user(request)
        if not user.is_authenticated or user.pk != user_id:
            gone.append(key)
    return gone
