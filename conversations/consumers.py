"""The chat WebSocket: authenticate, check ownership, validate each frame, hand it on.

All the work happens in `services` (the writes) and `replies` (the streaming); this consumer
only translates frames. It also orders what it forwards per reply: a client never sees a delta
before the state it follows, nor the same delta twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import Counter
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext as _

from . import attachments, lifecycle, replies, services, session_watch
from .accounts import session_tag, user_group
from .database import in_database
from .errors import ChatError
from .models import Conversation, Message, Status
from .protocol import ReplyOrder, conversation_frame, error_frame, message_payload, parse_frame

logger = logging.getLogger(__name__)

# Frames larger than the longest allowed message (4 bytes a character) plus room for the JSON.
FRAME_OVERHEAD_BYTES = 1024
FRAMES_PER_SECOND = 10
FRAME_BURST = 30
# How long to wait for a running reply's own state before falling back to the saved one.
SYNC_TIMEOUT_SECONDS = 2.0
# daphne refuses to send a WebSocket message over 1 MiB, and the socket dies with it: every
# frame sent stays under this, with room to spare.
MAX_FRAME_BYTES = 1024 * 1024 - 4096
# The answer to `subscribe`: the newest messages after the client's, at most this many, in
# frames of at most this size. Older ones the page fetches over HTTP, as when scrolling up.
SYNC_MAX_MESSAGES = 100
SYNC_PAGE_BYTES = 256 * 1024
# Replies whose end this socket has forwarded, remembered to drop their late frames.
ENDED_REMEMBERED = 32

# Frames that start a reply, refused while the process shuts down.
STARTS_A_REPLY = ("message.send", "message.edit", "reply.regenerate", "reply.continue")

# This process's open chat sockets per user id (`CHAT_MAX_SOCKETS_PER_USER`).
_sockets_per_user: Counter[Any] = Counter()


def at_socket_limit(user: Any) -> bool:
    return _sockets_per_user[user.pk] >= settings.CHAT_MAX_SOCKETS_PER_USER


def not_logged_in() -> ChatError:
    return ChatError("not_authenticated", _("Log in to chat."))


def too_many_sockets() -> ChatError:
    return ChatError(
        "too_many_sockets",
        _("You have too many chat tabs open (%(limit)d). Close some, then reconnect.")
        % {"limit": settings.CHAT_MAX_SOCKETS_PER_USER},
    )


# How a refused socket is closed, by the error's code; any other refusal is a 404.
CLOSE_CODES = {"not_authenticated": 4401, "not_found": 4404, "too_many_sockets": 4429}


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


class ReplyView(ReplyOrder):
    """What this socket has forwarded of one streaming reply, and when it last heard of it."""

    def __init__(self) -> None:
        super().__init__()
        self.last_seen = time.monotonic()


class ChatConsumer(AsyncJsonWebsocketConsumer):
    conversation: Conversation | None = None
    watchdog: asyncio.Task[None] | None = None
    counted_user: Any = None
    listening: tuple[str, ...] = ()  # its groups, whose frames from this process come straight
    held: list[dict[str, Any]] | None = None  # those that came while the socket connected
    signed_out = False  # its session ended: nothing from the browser is taken any more

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        # Korean text as itself: three bytes a character instead of six for `\uXXXX`.
        return json.dumps(content, ensure_ascii=False, separators=(",", ":"))

    async def send_json(self, content: Any, close: bool = False) -> None:
        """Send a frame; one daphne could not send (over 1 MiB) is replaced by an error."""
        text = await self.encode_json(content)
        if len(text) * 3 > MAX_FRAME_BYTES and len(text.encode()) > MAX_FRAME_BYTES:
            logger.error(
                "a %s frame was too large to send (%d bytes)", content.get("type"), len(text)
            )
            text = await self.encode_json(
                error_frame(
                    ChatError(
                        "too_large", _("Something here is too large to show live. Reload the page.")
                    )
                )
            )
        await self.send(text_data=text, close=close)

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
        lifecycle.install()
        await self.accept()
        session = self.scope.get("session")
        if "user" not in self.scope and (session is None or session.session_key is None):
            await self.refuse(not_logged_in())
            return  # no session cookie: nothing to read
        self.views: dict[int, ReplyView] = {}
        # The replies whose end went out, and the `seq` they ended with. Insertion-ordered:
        # the oldest is forgotten past ENDED_REMEMBERED.
        self.ended: dict[int, int] = {}
        self.watchdog: asyncio.Task[None] | None = None
        self.allowance = float(FRAME_BURST)
        self.allowance_at = time.monotonic()
        self.told_slow_down_at = float("-inf")
        # The `sync_id` of the last answer to `subscribe`, until the client acknowledges it.
        self.unacknowledged_sync: str | None = None
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        # In the group before looking for a streaming reply: a reply that starts meanwhile is
        # announced to this socket, one that started before is found. Channels hands a
        # socket its messages one at a time: the group's wait until this connect is done,
        # and are dropped if the socket is refused (`self.conversation` stays None).
        self.group = replies.group_name(conversation_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        # What this process sends to the socket's groups comes straight here (`group_frames`),
        # held, like the groups' messages, until the connect is done.
        self.held = []
        self.listen(self.group)
        try:
            await self.join(conversation_id)
        except BaseException:
            self.uncount()  # a connect that failed half-way holds no place
            raise
        finally:
            held, self.held = self.held, None
            if self.conversation is None:
                self.stop_listening()
                await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.group_frames(held)

    def listen(self, group: str) -> None:
        replies.listen(group, self)
        self.listening += (group,)

    def stop_listening(self) -> None:
        for group in self.listening:
            replies.stop_listening(group, self)
        self.listening = ()

    async def join(self, conversation_id: Any) -> None:
        """Check who asks and for what, say `ready`, catch up a streaming reply."""
        user, conversation, streaming = await in_database(self.opening)(conversation_id)
        if isinstance(conversation, ChatError):
            await self.refuse(conversation)
            return
        if at_socket_limit(user):  # another socket of theirs opened meanwhile
            await self.refuse(too_many_sockets())
            return
        _sockets_per_user[user.pk] += 1
        self.counted_user = user.pk
        self.scope["user"] = user
        self.conversation = conversation
        # Before `ready`: a logout from another tab from now on closes this socket too, and a
        # session that ends unheard (the layer down, or run out) at the watch's next look.
        await self.channel_layer.group_add(user_group(user.pk), self.channel_name)
        self.listen(user_group(user.pk))
        session_watch.watch().add(self)
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

    def opening(self, conversation_id: Any) -> tuple[Any, Conversation | ChatError, Message | None]:
        """What a socket's opening reads, in one trip to the database thread: who asks (the
        user a middleware in front put in the scope, else the session's, checked as Django
        checks a page's), their conversation, and its reply still being written; in place of
        the conversation, why the socket is refused.

        channels' AuthMiddleware would read the user in a trip of its own: at a few hundred
        sockets opening a second, each trip is the database thread's and the event loop's
        time (docs/benchmarks.md)."""
        user = self.scope.get("user")
        if user is None:
            request = HttpRequest()
            request.session = self.scope["session"]
            user = auth.get_user(request)
        if not user.is_authenticated:
            return user, not_logged_in(), None
        if at_socket_limit(user):
            return user, too_many_sockets(), None  # nothing more to read
        try:
            conversation, streaming = services.opened(user=user, conversation_id=conversation_id)
        except ChatError as exc:  # not theirs, or gone
            return user, exc, None
        return user, conversation, streaming

    async def refuse(self, error: ChatError) -> None:
        await self.send_json(error_frame(error))
        await self.close(code=CLOSE_CODES.get(error.code, 4404))

    def uncount(self) -> None:
        if self.counted_user is not None:
            _sockets_per_user[self.counted_user] -= 1
            if _sockets_per_user[self.counted_user] <= 0:
                del _sockets_per_user[self.counted_user]
            self.counted_user = None

    async def disconnect(self, code: int) -> None:
        self.stop_listening()
        self.uncount()
        session_watch.watch().discard(self)
        self.views = {}
        if self.watchdog is not None:
            # Let go of it: a cancelled task keeps its CancelledError, whose traceback holds
            # this consumer (the watch's frame), so a reference kept here would make a cycle
            # of the socket's every object, left to the rarely run full collection.
            self.watchdog.cancel()
            self.watchdog = None
        if self.conversation is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            user_id = self.scope["user"].pk
            await self.channel_layer.group_discard(user_group(user_id), self.channel_name)

    # Frames from the browser.

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.conversation is None or self.signed_out:
            return
        frame: dict[str, Any] = {}
        try:
            if not self.check_flood():
                return
            max_bytes = settings.CHAT_MAX_MESSAGE_CHARS * 4 + FRAME_OVERHEAD_BYTES
            frame = parse_frame(text_data, max_bytes=max_bytes)
            await self.dispatch_frame(frame)
        except ChatError as exc:
            # Every refusal of a frame names its client id: the page gives the message back to
            # its box whatever the reason (the conversation gone meanwhile among them).
            if exc.client_id is None and isinstance(frame.get("client_id"), str):
                exc.client_id = frame["client_id"]
            await self.send_json(error_frame(exc))

    def check_flood(self) -> bool:
        """Whether to handle a frame. Over the rate a frame is dropped, and said so (raised) at
        most once a second: answering each one would queue frames for a client that may not
        read."""
        now = time.monotonic()
        self.allowance = min(
            FRAME_BURST, self.allowance + (now - self.allowance_at) * FRAMES_PER_SECOND
        )
        self.allowance_at = now
        if self.allowance >= 1:
            self.allowance -= 1
            return True
        if now - self.told_slow_down_at >= 1:
            self.told_slow_down_at = now
            raise ChatError("slow_down", _("Too many frames at once. Slow down."))
        return False

    async def dispatch_frame(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind in STARTS_A_REPLY and lifecycle.draining():
            raise ChatError(
                "server_restarting",
                _("The server is restarting. Send your message again in a moment."),
            )
        user = self.scope["user"]
        common = {"user": user, "conversation_id": self.conversation.pk}
        if kind == "message.send":
            prepared = await replies.post(
                content=frame["content"],
                client_id=frame["client_id"],
                attachments=tuple(frame.get("attachments") or ()),
                **common,
            )
            if not prepared.is_new:
                # A resent frame: say what the first one stored, and store nothing.
                await self.send_json(
                    {
                        "type": "sync",
                        "messages": [message_payload(m) for m in prepared.created],
                        "sync_id": "",
                        "from_id": None,
                        "done": True,
                    }
                )
        elif kind == "message.edit":
            await replies.start(
                services.edit_message,
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
            await self.subscribe(frame.get("after_id"), frame.get("ack"))
        elif kind == "version.select":
            await self.select_version(frame["message_id"], frame["version"])
        elif kind == "answer.edit":
            change = await in_database(services.edit_answer)(
                message_id=frame["message_id"],
                content=frame["content"],
                limit=SYNC_MAX_MESSAGES,
                **common,
            )
            await replies.send_to_group(self.conversation.pk, version_frame(change))

    async def select_version(self, message_id: int, version: int) -> None:
        """Choose a version at a fork; every socket of the conversation is told the new path."""
        change = await in_database(services.select_version)(
            user=self.scope["user"],
            conversation_id=self.conversation.pk,
            message_id=message_id,
            version=version,
            limit=SYNC_MAX_MESSAGES,
        )
        await replies.send_to_group(self.conversation.pk, version_frame(change))

    async def stop_reply(self, reply_id: int | None) -> None:
        reply = await self.streaming_reply(reply_id)
        if reply is None:
            raise ChatError("nothing_to_stop", _("No answer is being written."))
        await replies.request_stop(reply)

    async def subscribe(self, after_id: int | None, ack: str | None) -> None:
        """Catch a client up: the newest messages after `after_id`, then a streaming reply.

        One answer at a time: another `subscribe` is answered once the client acknowledges the
        last answer with its `sync_id`, which only reading it tells. A socket that never reads
        cannot make the server queue catch-up after catch-up for it.
        """
        if self.unacknowledged_sync is not None and ack != self.unacknowledged_sync:
            raise ChatError("slow_down", _("Still catching up: read the last answer first."))
        self.unacknowledged_sync = sync_id = secrets.token_urlsafe(9)
        conversation, messages, from_id = await database_sync_to_async(self.messages_after)(
            after_id
        )
        # Its title, archive and pin as they are now: a change made between the page's
        # rendering and this socket joining the group reached the group before it did.
        await self.send_json(conversation_frame(conversation))
        pages = sync_pages([message_payload(m) for m in messages])
        for number, page in enumerate(pages, 1):
            await self.send_json(
                {
                    "type": "sync",
                    "messages": page,
                    "sync_id": sync_id,
                    "from_id": from_id,
                    "done": number == len(pages),
                }
            )
        streaming = await self.streaming_reply()
        if streaming is not None:
            await self.catch_up(streaming)

    def messages_after(
        self, after_id: int | None
    ) -> tuple[Conversation, list[Message], int | None]:
        """The conversation as it is now, the newest SYNC_MAX_MESSAGES messages after
        `after_id`, oldest first, and the newest one left out (None when none was)."""
        conversation = Conversation.objects.filter(pk=self.conversation.pk).first()
        if conversation is None:  # deleted meanwhile (its tabs are being closed)
            raise ChatError("not_found", _("This conversation does not exist."))
        services.sweep_orphaned_replies(self.conversation.pk)
        tree = Message.objects.tree(self.conversation.pk)
        # Of the active path: along a path the ids grow.
        path = [pk for pk in tree.path() if after_id is None or pk > after_id]
        from_id = path[-SYNC_MAX_MESSAGES - 1] if len(path) > SYNC_MAX_MESSAGES else None
        messages = list(
            Message.objects.filter(pk__in=path[-SYNC_MAX_MESSAGES:]).with_usage().order_by("id")
        )
        tree.number(messages)
        attachments.load_payloads(messages)
        return conversation, messages, from_id

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

    def live_view(self, reply_id: int, seq: int) -> ReplyView | None:
        """The view of a reply whose end has not gone out. After it, nothing of the reply up
        to its end's `seq` is forwarded: a delta overtaken by the end, or a snapshot answered
        late, is in the end. A later one belongs to the reply going on (Continue): it waits
        for the reply's `message.updated`."""
        ended = self.ended.get(reply_id)
        if ended is not None:
            if seq <= ended:
                return None
            del self.ended[reply_id]
        return self.view(reply_id)

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
                try:
                    await replies.send_to_group(self.conversation.pk, frame)
                    return reply
                except Exception as exc:  # the others find it as this socket did
                    logger.warning("announcing swept reply %s failed (%r)", reply_id, exc)
            await self.end_reply(frame)  # it ended without this socket hearing of it
        return reply

    def sweep_reply(self, reply_id: int) -> tuple[int, Message | None]:
        swept = services.sweep_orphaned_replies(self.conversation.pk)
        reply = self.conversation.messages.with_usage().filter(pk=reply_id).first()
        if reply is not None:
            Message.objects.tree(self.conversation.pk).number([reply])
        return swept, reply

    # Events from the user's group (accounts.py), the conversation's and reply runners.

    async def session_ended(self, event: dict[str, Any]) -> None:
        """A session of this socket's user ended (logout, a new password, an account turned
        off): a socket of that session chats no more. The page says "Log in to chat"."""
        if self.conversation is None:
            return
        mine = session_tag(self.session_key())
        if event.get("keep") is not None and event["keep"] == mine:
            return
        if event.get("session") is not None and event["session"] != mine:
            return
        await self.session_gone()

    def session_key(self) -> str | None:
        session = self.scope.get("session")
        return session.session_key if session is not None else None

    async def session_gone(self) -> None:
        self.signed_out = True
        await self.close(code=CLOSE_CODES["not_authenticated"])

    async def chat_event(self, event: dict[str, Any]) -> None:
        if self.conversation is not None and not replies.sent_here(event):
            await self.forward(event["frame"])

    async def chat_events(self, event: dict[str, Any]) -> None:
        if self.conversation is not None and not replies.sent_here(event):
            for frame in event["frames"]:
                await self.forward(frame)

    async def group_frames(self, frames: list[dict[str, Any]]) -> None:
        """Frames sent to one of the socket's groups in this process (`replies.listen`)."""
        if self.held is not None:
            self.held.extend(frames)
        elif self.conversation is not None:
            for frame in frames:
                await self.forward(frame)

    async def forward(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "reply.delta":
            await self.apply_delta(frame)
            return
        if kind == "reply.state":  # the text so far, after the layer lost some deltas
            await self.apply_state(frame)
            return
        if kind in ("message.created", "message.updated") and (
            frame["message"]["status"] == Status.STREAMING
        ):
            # A reply starts, or goes on (Continue): its deltas from the message's `seq` on.
            message = frame["message"]
            self.ended.pop(message["id"], None)
            view = self.view(message["id"])
            if view.seq is None:
                await self.send_json(frame)
                await self.send_all(view.begin(message["seq"]))
                return
        if kind == "reply.ended":
            await self.end_reply(frame)
            return
        if kind == "conversation.deleted":  # from another tab: the page says it is gone
            await self.close(code=CLOSE_CODES["not_found"])
            return
        await self.send_json(frame)
        if kind == "version.selected":
            # A reply still streaming on the new path: its text so far, then its deltas.
            for message in frame["messages"]:
                if message["status"] == Status.STREAMING:
                    streaming = await self.streaming_reply(message["id"])
                    if streaming is not None:
                        await self.catch_up(streaming)

    async def end_reply(self, frame: dict[str, Any]) -> None:
        """Forward a reply's end, after its full text if some deltas have not arrived yet.

        Across processes the end may overtake the last deltas (they are published from
        different tasks). The final state makes the client whole; later deltas are dropped.
        """
        message = frame["message"]
        view = self.views.pop(message["id"], None)
        self.ended[message["id"]] = message["seq"]
        if len(self.ended) > ENDED_REMEMBERED:
            del self.ended[next(iter(self.ended))]
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
        if self.conversation is not None:
            await self.apply_state(event["frame"])

    async def apply_state(self, frame: dict[str, Any]) -> None:
        view = self.live_view(frame["reply_id"], frame["seq"])
        if view is not None:
            await self.send_all(view.state(frame))

    async def apply_delta(self, frame: dict[str, Any]) -> None:
        view = self.live_view(frame["reply_id"], frame["seq"])
        if view is not None:
            await self.send_all(view.delta(frame))

    async def send_all(self, frames: list[dict[str, Any]]) -> None:
        for frame in frames:
            await self.send_json(frame)


def version_frame(change: services.PathChange) -> dict[str, Any]:
    """`version.selected` for a path change, within one sync page: the oldest messages that
    do not fit are left out (`from_id`), and a page shows the path again from the server."""
    payloads = [message_payload(m) for m in change.messages]
    sizes = [len(json.dumps(p, ensure_ascii=False).encode()) for p in payloads]
    from_id = change.from_id
    while payloads and sum(sizes) > SYNC_PAGE_BYTES:
        from_id = payloads.pop(0)["id"]
        sizes.pop(0)
    return {
        "type": "version.selected",
        "after_id": change.after_id,
        "messages": payloads,
        "from_id": from_id,
    }


def sync_pages(payloads: list[Any]) -> list[list[Any]]:
    """Messages in pages of at most SYNC_PAGE_BYTES of JSON (one message alone may exceed it,
    never MAX_FRAME_BYTES: the page fetches such a one over HTTP). Always at least one page."""
    pages: list[list[Any]] = [[]]
    size = 0
    for payload in payloads:
        length = len(json.dumps(payload, ensure_ascii=False).encode())
        if length > MAX_FRAME_BYTES - FRAME_OVERHEAD_BYTES:
            logger.warning(
                "message %s is too large for the socket; left out of a sync", payload["id"]
            )
            continue
        if pages[-1] and size + length > SYNC_PAGE_BYTES:
            pages.append([])
            size = 0
        pages[-1].append(payload)
        size += length
    return pages
