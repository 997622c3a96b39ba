"""The socket frames as TypedDicts, and the validation of what a client sends.

`docs/protocol.md` describes the same frames for people; keep the two in step.
"""

from __future__ import annotations

import json
from typing import Any, Literal, NotRequired, TypedDict

from django.utils.translation import gettext as _

from .errors import ChatError
from .models import Conversation, Message

CLIENT_TYPES = (
    "message.send",
    "message.edit",
    "reply.stop",
    "reply.regenerate",
    "reply.continue",
    "subscribe",
    "version.select",
    "answer.edit",
)


class Usage(TypedDict):
    prompt_tokens: int | None
    completion_tokens: int | None
    # Counted by the app: the model's server reported none.
    estimated: bool


class MessagePayload(TypedDict):
    id: int
    role: str
    content: str
    status: str
    finish_reason: str
    model: str
    error: str
    client_id: str
    created_at: str
    completed_at: str | None
    usage: Usage
    parameters: dict[str, Any] | None
    context_from_id: int | None
    # The user's 👍 ("good") or 👎 ("bad") on an answer, "" when none.
    rating: str
    # An answer the user wrote over the model's (`answer.edit`).
    edited: bool
    # Never the tokens themselves: a reply's logprobs can be megabytes (20 alternatives a
    # token), more than one frame may carry. Whether it has them; the page fetches them over
    # HTTP (`logprobs_url`).
    has_logprobs: bool
    seq: int
    # The message it follows (null for a first message), and its place among its siblings
    # (the versions at its fork, from 1) and their number (`conversations.tree`).
    parent_id: int | None
    version: int
    versions: int
    # The files a user message carries (`attachments.payload`): never their bytes.
    attachments: list[dict[str, Any]]


class ReadyFrame(TypedDict):
    type: Literal["ready"]
    conversation_id: str
    limits: dict[str, int]


class MessageFrame(TypedDict):
    type: Literal["message.created", "message.updated", "reply.ended"]
    message: MessagePayload


class DeltaFrame(TypedDict):
    type: Literal["reply.delta"]
    reply_id: int
    seq: int
    text: str
    logprobs: NotRequired[list[dict[str, Any]]]


class StateFrame(TypedDict):
    type: Literal["reply.state"]
    reply_id: int
    seq: int
    content: str
    status: str


class VersionFrame(TypedDict):
    """A version was chosen: the active path after `after_id` (the message the fork follows,
    null at the first messages), oldest first; `from_id` is the newest of it left out (too
    many or too large for one frame), null when none was."""

    type: Literal["version.selected"]
    after_id: int | None
    messages: list[MessagePayload]
    from_id: int | None


class RatedFrame(TypedDict):
    """An answer's 👍 / 👎 was saved (`rating`: good, bad, or empty when taken back)."""

    type: Literal["message.rated"]
    message_id: int
    rating: str


class ConversationPayload(TypedDict):
    """A conversation as its tabs show it. The model's title names only `id` and `title`."""

    id: str
    title: str
    archived: NotRequired[bool]
    pinned: NotRequired[bool]


class ConversationFrame(TypedDict):
    """The conversation's title, place in the archive or pin changed, in any tab or by its
    first message."""

    type: Literal["conversation.updated"]
    conversation: ConversationPayload


class SyncFrame(TypedDict):
    """One page of the answer to `subscribe`. The pages of one answer share its `sync_id`;
    the last has `done`. `from_id` is the newest message not sent (the answer covers what is
    after it), null when nothing was left out."""

    type: Literal["sync"]
    messages: list[MessagePayload]
    sync_id: str
    from_id: int | None
    done: bool


class ErrorFrame(TypedDict):
    type: Literal["error"]
    code: str
    message: str
    client_id: NotRequired[str]


def iso_time(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# What a message's parameters keep on the socket: the system prompt (up to
# `CHAT_MAX_SYSTEM_PROMPT_CHARS`) travels with no frame; the page shows it from the settings.
SOCKET_PARAMETERS_LEFT_OUT = ("system_prompt",)


def socket_parameters(parameters: dict[str, Any] | None) -> dict[str, Any] | None:
    if parameters is None:
        return None
    return {k: v for k, v in parameters.items() if k not in SOCKET_PARAMETERS_LEFT_OUT}


def message_usage(message: Message) -> Usage:
    """The reply's tokens, from the usage ledger (`Message.usage`)."""
    prompt, completion, estimated = message.usage
    return {"prompt_tokens": prompt, "completion_tokens": completion, "estimated": estimated}


def message_payload(message: Message) -> MessagePayload:
    return {
        "id": message.pk,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "finish_reason": message.finish_reason,
        "model": message.model,
        "error": message.error,
        "client_id": message.client_id,
        "created_at": iso_time(message.created_at) or "",
        "completed_at": iso_time(message.completed_at),
        "usage": message_usage(message),
        "parameters": socket_parameters(message.parameters),
        "context_from_id": message.context_from_id,
        "rating": message.rating,
        "edited": message.edited,
        "has_logprobs": bool(message.logprobs),
        "seq": message.seq,
        "parent_id": message.parent_id,
        # Set from the conversation's tree by whoever loaded the message (`Tree.number`).
        "version": getattr(message, "version", 1),
        "versions": getattr(message, "versions", 1),
        # Set by whoever loaded the message (`attachments.load_payloads`).
        "attachments": getattr(message, "attachment_payloads", []),
    }


def conversation_frame(conversation: Conversation) -> ConversationFrame:
    return {
        "type": "conversation.updated",
        "conversation": {
            "id": str(conversation.pk),
            "title": conversation.title,
            "archived": conversation.archived_at is not None,
            "pinned": conversation.pinned,
        },
    }


def error_frame(error: ChatError) -> ErrorFrame:
    frame: ErrorFrame = {"type": "error", "code": error.code, "message": error.message}
    if error.client_id:
        frame["client_id"] = error.client_id
    return frame


def parse_frame(text: str | None, *, max_bytes: int) -> dict[str, Any]:
    """Check a client frame's shape; raise `ChatError` with a clear message when it is wrong."""
    if text is None:
        raise ChatError("bad_json", _("Frames must be JSON text."))
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ChatError(
            "too_large", _("This frame is too large (over %(limit)d bytes).") % {"limit": max_bytes}
        )
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        # RecursionError: brackets nested deeper than the parser goes (80,000 `[`).
        raise ChatError("bad_json", _("This frame is not valid JSON.")) from None
    if not isinstance(frame, dict):
        raise ChatError("bad_json", _("A frame must be a JSON object."))
    if not all(storable(value) for value in _strings(frame)):
        # A lone surrogate (`"\ud800"`) cannot be encoded for the database, a NUL PostgreSQL
        # refuses: refused here, the frame fails alone instead of the write it would join.
        raise ChatError("invalid", _("The frame holds characters that cannot be stored."))
    kind = frame.get("type")
    client_id = frame.get("client_id") if isinstance(frame.get("client_id"), str) else None
    if kind not in CLIENT_TYPES:
        raise ChatError(
            "unknown_type", _("Unknown frame type: %(type)s.") % {"type": str(kind)[:40]}, client_id
        )
    if kind in ("message.send", "message.edit", "reply.regenerate", "reply.continue"):
        _require_client_id(frame)
    if kind in ("message.send", "message.edit", "answer.edit"):
        _require(frame, "content", str, client_id)
    if kind == "message.send" and frame.get("attachments") is not None:
        _require_ids(frame, "attachments", client_id)
    if kind in ("message.edit", "answer.edit", "version.select"):
        _require(frame, "message_id", int, client_id)
    if kind == "version.select":
        _require(frame, "version", int, client_id)
    if kind == "reply.stop" and "reply_id" in frame:
        _require(frame, "reply_id", int, client_id)
    if kind == "subscribe" and frame.get("after_id") is not None:
        _require(frame, "after_id", int, client_id)
    if kind == "subscribe" and frame.get("ack") is not None:
        _require(frame, "ack", str, client_id)
    return frame


def storable(text: str) -> bool:
    """Whether a text can be stored as it is: UTF-8 encodable (no lone surrogate), no NUL."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _strings(value: Any) -> list[str]:
    """Every string in a parsed frame, keys included."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            found.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _require(frame: dict[str, Any], name: str, kind: type, client_id: str | None) -> None:
    value = frame.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ChatError(
            "invalid",
            _("The field “%(name)s” is missing or has the wrong type.") % {"name": name},
            client_id,
        )


# More ids than any message may carry are refused with the frame, before a query.
MAX_IDS_IN_FRAME = 100


def _require_ids(frame: dict[str, Any], name: str, client_id: str | None) -> None:
    value = frame.get(name)
    if (
        not isinstance(value, list)
        or len(value) > MAX_IDS_IN_FRAME
        or not all(isinstance(item, int) and not isinstance(item, bool) for item in value)
    ):
        raise ChatError(
            "invalid",
            _("The field “%(name)s” must be a list of ids.") % {"name": name},
            client_id,
        )


def _require_client_id(frame: dict[str, Any]) -> None:
    value = frame.get("client_id")
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise ChatError(
            "invalid", _("The field “client_id” must be a string of 1 to 64 characters.")
        )


class ReplyOrder:
    """What a reader has applied of one streaming reply: deltas in `seq` order, a state as a
    new base, nothing twice ("Keeping up" in docs/protocol.md). The socket and the terminal
    chat both read replies through it; each method returns the frames ready to show, in order.
    """

    def __init__(self, seq: int | None = None) -> None:
        self.seq = seq  # None until there is a base to apply deltas to
        self.pending: dict[int, dict[str, Any]] = {}

    def begin(self, seq: int = 0) -> list[dict[str, Any]]:
        """The reply starts here (its `message.created`, or its `message.updated` when it goes
        on) with `seq` deltas in its text: the deltas after them apply."""
        if self.seq is None:
            self.seq = seq
        return self._ready()

    def state(self, frame: dict[str, Any]) -> list[dict[str, Any]]:
        if self.seq is not None and self.seq >= frame["seq"]:
            return []  # older than what was shown
        self.seq = frame["seq"]
        return [frame, *self._ready()]

    def delta(self, frame: dict[str, Any]) -> list[dict[str, Any]]:
        if self.seq is not None and frame["seq"] <= self.seq:
            return []  # shown already
        self.pending[frame["seq"]] = frame
        return self._ready()

    def _ready(self) -> list[dict[str, Any]]:
        if self.seq is None:
            return []
        for seq in [s for s in self.pending if s <= self.seq]:
            del self.pending[seq]
        ready = []
        while self.seq + 1 in self.pending:
            self.seq += 1
            ready.append(self.pending.pop(self.seq))
        return ready
