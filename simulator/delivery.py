"""Sending a completion over HTTP: pacing, faults, client disconnects and server stop.

These are raw ASGI responses rather than Starlette's ``StreamingResponse`` because the
simulator needs things a normal response never does: cutting the TCP connection mid-body,
holding it open in silence, writing a line that is not JSON, and noticing both a client
that went away and a server that is stopping while it waits.

Cutting the connection: ASGI has no "abort" message, so the response raises
:class:`DropConnection` after the body has started; uvicorn then closes the transport.
uvicorn logs such exceptions as errors, so :func:`hide_drop_tracebacks` installs a filter
that removes exactly these records (they are intended, not failures).
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .config import Fault
from .engine import Completion
from .wire import Envelope

_BROKEN_LINE = b'data: {"id": broken\n\n'
INTERRUPTING_FAULTS = ("drop", "stall", "broken_chunk", "error_event", "content_filter")
_SLICE = 0.1


class DropConnection(Exception):
    """Raised on purpose so uvicorn closes the socket without finishing the response."""


class ServerStopping(Exception):
    """The simulator is shutting down; whatever is waiting gives up at once."""


class _HideDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection)


_HIDE_DROPS = _HideDrops()


def hide_drop_tracebacks() -> None:
    """Keep intended connection drops out of uvicorn's error log (idempotent)."""
    logging.getLogger("uvicorn.error").addFilter(_HIDE_DROPS)


async def pause(seconds: float, stopping: threading.Event) -> None:
    """Sleep, waking every 0.1 s to give up (``ServerStopping``) if the server is stopping."""
    deadline = time.monotonic() + seconds
    while True:
        if stopping.is_set():
            raise ServerStopping
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        await anyio.sleep(min(remaining, _SLICE))


@dataclass
class Activity:
    """What the server is doing, so tests can see server-side effects of client behaviour.

    ``open_responses`` counts completions being sent right now; ``disconnects`` counts
    responses abandoned because the client went away (e.g. the app cancelled a stream).
    Only the server's event loop changes these; other threads just read them.
    """

    open_responses: int = 0
    disconnects: int = 0


class Outcome(enum.Enum):
    COMPLETE = "complete"
    DROP = "drop"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class Delivery:
    """Everything needed to send one completion: content, pace, fault and framing."""

    completion: Completion
    envelope: Envelope
    include_logprobs: bool
    include_usage: bool
    tokens_per_second: float | None
    first_token_delay: float
    fault: Fault | None
    stopping: threading.Event
    activity: Activity
    # False: no usage at all, not even in a non-streamed answer (a server that counts none).
    send_usage: bool = True

    @property
    def interval(self) -> float:
        return 1.0 / self.tokens_per_second if self.tokens_per_second else 0.0

    @property
    def cut(self) -> int:
        """How many tokens are sent before an interrupting fault (all when none)."""
        total = len(self.completion.tokens)
        if self.fault and self.fault.kind in INTERRUPTING_FAULTS:
            return min(self.fault.after, total)
        return total


class _DeliveryResponse(Response):
    """Runs :meth:`_deliver` while watching for the client to disconnect.

    A :class:`~starlette.responses.Response` only so Starlette routes may return it; the
    whole exchange is written by hand in :meth:`_deliver`.
    """

    def __init__(self, delivery: Delivery) -> None:
        super().__init__()
        self.delivery = delivery
        self.extra_headers = [
            (b"x-request-id", f"req_{delivery.envelope.id[9:]}".encode()),
            (b"openai-processing-ms", b"1"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome = Outcome.DISCONNECTED
        activity = self.delivery.activity
        activity.open_responses += 1
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._cancel_on_disconnect, receive, group.cancel_scope)
                try:
                    outcome = await self._deliver(send)
                except ServerStopping:
                    outcome = Outcome.DROP
                except OSError:  # a server that reports the disconnect by failing send()
                    outcome = Outcome.DISCONNECTED
                group.cancel_scope.cancel()
        finally:
            activity.open_responses -= 1
            if outcome is Outcome.DISCONNECTED:
                activity.disconnects += 1
        if outcome is Outcome.DROP:
            raise DropConnection

    @staticmethod
    async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    async def _deliver(self, send: Send) -> Outcome:
        raise NotImplementedError


async def _write(send: Send, body: bytes, *, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": more})


class StreamedCompletion(_DeliveryResponse):
    """``text/event-stream`` of ``chat.completion.chunk`` objects, paced like a model.

    Sequence: role chunk; ``first_token_delay``; one chunk per token, ``1/tps`` apart; a
    chunk with an empty delta and ``finish_reason``; the usage chunk (``choices: []``) when
    ``stream_options.include_usage``; ``data: [DONE]``. Faults cut in after ``fault.after``
    token chunks.
    """

    async def _event(self, send: Send, payload: dict[str, Any] | str) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        await _write(send, f"data: {data}\n\n".encode())

    async def _deliver(self, send: Send) -> Outcome:
        d = self.delivery
        envelope, usage_on = d.envelope, d.include_usage
        kind = d.fault.kind if d.fault else None
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            *self.extra_headers,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if kind == "empty":
            await _write(send, b"", more=False)
            return Outcome.COMPLETE
        await self._event(send, envelope.role_chunk(with_usage_field=usage_on))
        await pause(d.first_token_delay, d.stopping)

        started = time.monotonic()
        for index, token in enumerate(d.completion.tokens[: d.cut]):
            if d.interval and index:
                await pause(started + index * d.interval - time.monotonic(), d.stopping)
            chunk = envelope.token_chunk(
                token, include_logprobs=d.include_logprobs, with_usage_field=usage_on
            )
            await self._event(send, chunk)

        if kind == "drop":
            return Outcome.DROP
        if kind == "stall" and d.fault is not None:
            await pause(d.fault.stall_seconds, d.stopping)
            return Outcome.DROP
        if kind == "broken_chunk":
            await _write(send, _BROKEN_LINE)
        elif kind == "error_event":
            message = (d.fault.message if d.fault else None) or "The server had an error."
            await self._event(
                send, {"error": {"message": message, "type": "server_error", "code": None}}
            )
        elif kind != "no_finish":
            finish_reason = "content_filter" if kind == "content_filter" else None
            finish_reason = finish_reason or d.completion.finish_reason
            await self._event(send, envelope.finish_chunk(finish_reason, with_usage_field=usage_on))
            if usage_on:
                await self._event(send, envelope.usage_chunk(d.completion.prompt_tokens, d.cut))
        if kind not in ("broken_chunk", "error_event"):
            await self._event(send, "[DONE]")
        await _write(send, b"", more=False)
        return Outcome.COMPLETE


class BufferedCompletion(_DeliveryResponse):
    """One ``chat.completion`` JSON body, sent after the time the whole answer would take.

    Faults map as closely as HTTP allows: ``drop`` sends the headers and half the body,
    then cuts the connection; ``stall`` sends the headers, then nothing; ``broken_chunk``
    sends a body that is not JSON; ``error_event`` answers HTTP 500 with the error object;
    ``no_finish`` has ``finish_reason: null`` and no usage; ``content_filter`` keeps
    ``fault.after`` tokens; ``empty`` sends no body at all.
    """

    async def _deliver(self, send: Send) -> Outcome:
        d = self.delivery
        kind = d.fault.kind if d.fault else None
        await pause(d.first_token_delay + max(0, d.cut - 1) * d.interval, d.stopping)

        finish_reason: str | None = d.completion.finish_reason
        if kind == "content_filter":
            finish_reason = "content_filter"
        elif kind == "no_finish":
            finish_reason = None
        document = d.envelope.completion(
            d.completion,
            tokens=d.cut,
            finish_reason=finish_reason,
            include_logprobs=d.include_logprobs,
            include_usage=kind != "no_finish" and d.send_usage,
        )
        body = json.dumps(document, ensure_ascii=False).encode()
        status = 200
        if kind == "broken_chunk":
            body = b'{"id": broken'
        elif kind == "empty":
            body = b""
        elif kind == "error_event":
            message = (d.fault.message if d.fault else None) or "The server had an error."
            body = json.dumps({"error": {"message": message, "type": "server_error"}}).encode()
            status = 500
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *self.extra_headers,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if kind == "drop":
            await _write(send, body[: len(body) // 2])
            return Outcome.DROP
        if kind == "stall" and d.fault is not None:
            await pause(d.fault.stall_seconds, d.stopping)
            return Outcome.DROP
        await _write(send, body, more=False)
        return Outcome.COMPLETE
