"""The chat WebSocket: authenticate, check ownership, validate each frame, hand it on.

All the work happens in `services` (the writes) and `replies` (the streaming); this consumer
only translates frames. It also orders what it forwards per reply: a client never sees a delta
before the state it follows, nor the same delta twice.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from . import replies, services
from .database import in_database
from .errors import ChatError
from .models import Conversation, Message, Status
from .protocol import error_frame, message_payload, parse_frame

# Frames larger than the longest allowed message (4 bytes a character) plus room for the JSON.
FRAME_OVERHEAD_BYTES = 1024
FRAMES_PER_SECOND = 10
FRAME_BURST = 30
# How long to wait for a running reply's own state before falling back to the saved one.
SYNC_TIMEOUT_SECONDS = 2.0


def language_of(scope: dict[str, Any]) -> str:
    cookie = scope.get("cookies", {}).get(settings.LANGUAGE_COOKIE_NAME)
    headers = dict(scope.get("headers", []))
    accepted = headers.get(b"accept-language", b"").decode("latin-1")
    choices = [cookie] if cookie else []
    choices += [code for code, _q in translation.trans_real.parse_accept_lang_header(accepted)]
    for code in choices:
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


class ReplyView:
    """What this socket has forwarded of one streaming reply."""

    def __init__(self) -> None:
        self.seq: int | None = None  # None until the client has a base to apply deltas to
        self.pending: dict[int, dict[str, Any]] = {}
        self.last_seen = time.monotonic()


class ChatConsumer(AsyncJsonWebsocketConsumer):
    conversation: Conversation | None = None
    watchdog: asyncio.Task[None] | None = None

    # channels closes stale database connections before every handler, a trip to the
    # database thread each time: for a streaming reply one per delta per socket, queueing the
    # replies' own database work behind them. Every database call here goes through
    # `database_sync_to_async`, which closes stale connections itself, in that thread.
    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        # Messages for the person in their language, chosen as LocaleMiddleware does for
        # pages: the language cookie, then Accept-Language. It holds for this socket's task.
        translation.activate(language_of(self.scope))
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse("not_authenticated", _("Log in to chat."), 4401)
            return
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        try:
            self.conversation = await in_database(services.get_owned)(
                user=user, conversation_id=conversation_id
            )
        except ChatError as exc:
            await self.refuse(exc.code, exc.message, 4404)
            return
        self.group = replies.group_name(self.conversation.pk)
        self.views: dict[int, ReplyView] = {}
        self.ended: set[int] = set()
        self.watchdog: asyncio.Task[None] | None = None
        self.allowance = float(FRAME_BURST)
        self.allowance_at = time.monotonic()
        # In the group before looking for a streaming reply: a reply that starts meanwhile is
        # announced to this socket, one that started before is found.
        await self.channel_layer.group_add(self.group, self.channel_name)
        streaming = await self.streaming_reply()
        # Ready once the connect's own work is done: a frame sent now is handled at once.
        await self.send_json(
            {
                "type": "ready",
                "conversation_id": str(self.conversation.pk),
                "limits": {"max_message_chars": settings.CHAT_MAX_MESSAGE_CHARS},
            }
        )
        if streaming is not None:
            await self.catch_up(streaming)

    async def refuse(self, code: str, message: str, close_code: int) -> None:
        await self.send_json(error_frame(ChatError(code, message)))
        await self.close(code=close_code)

    async def disconnect(self, code: int) -> None:
        self.views = {}
        if self.watchdog is not None:
            self.watchdog.cancel()
        if self.conversation is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    # Frames from the browser.

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.conversation is None:
            return
        try:
            self.check_flood()
            max_bytes = settings.CHAT_MAX_MESSAGE_CHARS * 4 + FRAME_OVERHEAD_BYTES
            frame = parse_frame(text_data, max_bytes=max_bytes)
            await self.dispatch_frame(frame)
        except ChatError as exc:
            await self.send_json(error_frame(exc))

    def check_flood(self) -> None:
        now = time.monotonic()
        self.allowance = min(
            FRAME_BURST, self.allowance + (now - self.allowance_at) * FRAMES_PER_SECOND
        )
        self.allowance_at = now
        if self.allowance < 1:
            raise ChatError("slow_down", _("Too many frames at once. Slow down."))
        self.allowance -= 1

    async def dispatch_frame(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        user = self.scope["user"]
        common = {"user": user, "conversation_id": self.conversation.pk}
        if kind == "message.send":
            prepared = await replies.start(
                services.post_message,
                content=frame["content"],
                client_id=frame["client_id"],
                **common,
            )
            if not prepared.is_new:
                # A resent frame: say what the first one stored, and store nothing.
                await self.send_json(
                    {"type": "sync", "messages": [message_payload(m) for m in prepared.created]}
                )
        elif kind == "message.edit":
            await replies.start(
                services.edit_last_message,
                message_id=frame["message_id"],
                content=frame["content"],
                client_id=frame["client_id"],
                **common,
            )
        elif kind == "reply.regenerate":
            await replies.start(services.regenerate, client_id=frame["client_id"], **common)
        elif kind == "reply.continue":
            await replies.start(services.continue_reply, client_id=frame["client_id"], **common)
        elif kind == "reply.stop":
            await self.stop_reply(frame.get("reply_id"))
        elif kind == "subscribe":
            await self.send_sync(frame.get("after_id"))
            streaming = await self.streaming_reply()
            if streaming is not None:
                await self.catch_up(streaming)

    async def stop_reply(self, reply_id: int | None) -> None:
        reply = await self.streaming_reply(reply_id)
        if reply is None:
            raise ChatError("nothing_to_stop", _("No answer is being written."))
        await replies.request_stop(reply)

    async def send_sync(self, after_id: int | None) -> None:
        messages = await database_sync_to_async(self.messages_after)(after_id)
        await self.send_json({"type": "sync", "messages": [message_payload(m) for m in messages]})

    def messages_after(self, after_id: int | None) -> list[Message]:
        services.sweep_orphaned_replies(self.conversation.pk)
        queryset = self.conversation.messages.all()
        if after_id is not None:
            queryset = queryset.filter(id__gt=after_id)
        return list(queryset)

    async def streaming_reply(self, reply_id: int | None = None) -> Message | None:
        return await in_database(services.streaming_reply)(self.conversation.pk, reply_id)

    async def catch_up(self, reply: Message) -> None:
        """Bring the client up to date with a reply that is still streaming.

        The socket joined the group first, so nothing after the runner's snapshot is missed;
        deltas that arrive before the snapshot wait in `pending`.
        """
        view = self.view(reply.pk)
        view.seq = None
        await replies.request_sync(reply, self.channel_name)
        asyncio.get_running_loop().call_later(
            SYNC_TIMEOUT_SECONDS, lambda: asyncio.ensure_future(self.fallback_sync(reply.pk))
        )

    async def fallback_sync(self, reply_id: int) -> None:
        """No snapshot came (its process is gone): show what was saved, swept if orphaned."""
        view = self.views.get(reply_id)
        if view is None or view.seq is not None:
            return
        reply = await self.settle_if_orphaned(reply_id)
        if reply is None or reply.status != Status.STREAMING:
            return
        await self.apply_state(
            {
                "type": "reply.state",
                "reply_id": reply.pk,
                "seq": reply.seq,
                "content": reply.content,
                "status": reply.status,
            }
        )

    def view(self, reply_id: int) -> ReplyView:
        """What this socket shows of a streaming reply; watched while it streams."""
        view = self.views.get(reply_id)
        if view is None:
            view = self.views[reply_id] = ReplyView()
        view.last_seen = time.monotonic()
        if self.watchdog is None or self.watchdog.done():
            self.watchdog = asyncio.create_task(self.watch_replies())
        return view

    def live_view(self, reply_id: int) -> ReplyView | None:
        """The view of a reply whose end has not gone out. After it, nothing of the reply is
        forwarded: a delta overtaken by the end, or a snapshot answered late, is in the end."""
        return None if reply_id in self.ended else self.view(reply_id)

    async def watch_replies(self) -> None:
        """Notice a reply whose process died: its lease runs out while no delta arrives."""
        interval = settings.CHAT_LEASE_SECONDS / 2
        while self.views:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for reply_id in [r for r, v in self.views.items() if now - v.last_seen >= interval]:
                await self.settle_if_orphaned(reply_id)

    async def settle_if_orphaned(self, reply_id: int) -> Message | None:
        """Sweep a reply whose lease ran out; say it ended, to the group if we swept it.

        The socket that sweeps tells the whole group, so every tab on every process shows
        it `interrupted` within about one lease of its process's death.
        """
        swept, reply = await database_sync_to_async(self.sweep_reply)(reply_id)
        if reply is not None and reply.status != Status.STREAMING:
            frame = {"type": "reply.ended", "message": message_payload(reply)}
            if swept:
                await replies.send_to_group(self.conversation.pk, frame)
            else:  # it ended without this socket hearing of it
                await self.end_reply(frame)
        return reply

    def sweep_reply(self, reply_id: int) -> tuple[int, Message | None]:
        swept = services.sweep_orphaned_replies(self.conversation.pk)
        return swept, self.conversation.messages.filter(pk=reply_id).first()

    # Events from the conversation's group and from reply runners.

    async def chat_event(self, event: dict[str, Any]) -> None:
        await self.forward(event["frame"])

    async def chat_events(self, event: dict[str, Any]) -> None:
        for frame in event["frames"]:
            await self.forward(frame)

    async def forward(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "reply.delta":
            await self.apply_delta(frame)
            return
        if kind == "message.created" and frame["message"]["status"] == Status.STREAMING:
            view = self.view(frame["message"]["id"])
            if view.seq is None:
                view.seq = 0
                await self.send_json(frame)
                await self.drain(frame["message"]["id"], view)
                return
        if kind == "reply.ended":
            await self.end_reply(frame)
            return
        await self.send_json(frame)

    async def end_reply(self, frame: dict[str, Any]) -> None:
        """Forward a reply's end, after its full text if some deltas have not arrived yet.

        Across processes the end may overtake the last deltas (they are published from
        different tasks). The final state makes the client whole; later deltas are dropped.
        """
        message = frame["message"]
        view = self.views.pop(message["id"], None)
        self.ended.add(message["id"])
        if view is None or view.seq is None or view.seq < message["seq"]:
            await self.send_json(
                {
                    "type": "reply.state",
                    "reply_id": message["id"],
                    "seq": message["seq"],
                    "content": message["content"],
                    "status": message["status"],
                }
            )
        await self.send_json(frame)

    async def reply_snapshot(self, event: dict[str, Any]) -> None:
        await self.apply_state(event["frame"])

    async def apply_state(self, frame: dict[str, Any]) -> None:
        view = self.live_view(frame["reply_id"])
        if view is None or (view.seq is not None and view.seq >= frame["seq"]):
            return
        view.seq = frame["seq"]
        await self.send_json(frame)
        await self.drain(frame["reply_id"], view)

    async def apply_delta(self, frame: dict[str, Any]) -> None:
        view = self.live_view(frame["reply_id"])
        if view is None or (view.seq is not None and frame["seq"] <= view.seq):
            return
        view.pending[frame["seq"]] = frame
        await self.drain(frame["reply_id"], view)

    async def drain(self, reply_id: int, view: ReplyView) -> None:
        if view.seq is None:
            return
        for seq in sorted(s for s in view.pending if s <= view.seq):
            del view.pending[seq]
        while view.seq + 1 in view.pending:
            view.seq += 1
            await self.send_json(view.pending.pop(view.seq))
