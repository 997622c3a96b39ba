"""The one place that knows the openai SDK: the client, the request, chunk -> event, errors.

Everything else sees plain events (`Delta`, `Finished`) and `ModelError` with a sentence of
our own a user understands: what the model's server wrote about a failure (it can name internal
addresses, or quote the request and its key) is logged for the operator, never shown. The API
key never leaves this module: not in an event, an error or a log line.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import logging
import re
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai
from django.conf import settings
from django.utils.translation import gettext as _

from .context import content_text

logger = logging.getLogger(__name__)


CHAT_COMPLETIONS_PATH = "/chat/completions"


@dataclass(frozen=True)
class Delta:
    text: str
    logprobs: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Finished:
    finish_reason: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


Event = Delta | Finished


@dataclass
class ModelError(Exception):
    """A failure of the model's side, with a message for the person reading the chat."""

    message: str
    code: str = "model_error"
    status: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


# One client per event loop: a connection pool belongs to the loop that opened it.
# Under daphne that is one client per process; tests get one per test loop.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[tuple, openai.AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)


def _connection() -> tuple[str, str | None]:
    """The key and base URL to use; in demo mode the built-in simulator's."""
    if settings.DEMO_MODE:
        from simulator.server import ensure_background_simulator

        return "demo-mode-no-key", ensure_background_simulator()
    return settings.OPENAI_API_KEY or "no-key-needed", settings.OPENAI_BASE_URL or None


def get_client() -> openai.AsyncOpenAI:
    api_key, base_url = _connection()
    config = (
        api_key,
        base_url,
        settings.OPENAI_CONNECT_TIMEOUT,
        settings.OPENAI_READ_TIMEOUT,
        settings.OPENAI_MAX_RETRIES,
    )
    loop = asyncio.get_running_loop()
    cached = _clients.get(loop)
    if cached is not None and cached[0] == config:
        return cached[1]
    client = openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        # The SDK's defaults (10 minutes, 2 retries) are far too long for a chat.
        timeout=openai.Timeout(
            settings.OPENAI_READ_TIMEOUT,
            connect=settings.OPENAI_CONNECT_TIMEOUT,
            read=settings.OPENAI_READ_TIMEOUT,
        ),
        max_retries=settings.OPENAI_MAX_RETRIES,
        # aiohttp under the SDK's own client (its documented `DefaultAioHttpClient`): the same
        # requests, errors and retries, for about half the CPU of its default transport a
        # streamed request (docs/benchmarks.md). A proxy from the environment still applies.
        http_client=openai.DefaultAioHttpClient(),
    )
    _clients[loop] = (config, client)
    return client


async def close_client() -> None:
    """Close this event loop's client and its connections, before the loop ends."""
    cached = _clients.pop(asyncio.get_running_loop(), None)
    if cached is not None:
        await cached[1].close()


def _close_clients_at_exit() -> None:
    """A server's loop has stopped when its process exits: close its clients on it, quietly."""
    for loop, (_config, client) in list(_clients.items()):
        if not loop.is_closed() and not loop.is_running():
            loop.run_until_complete(client.close())
    _clients.clear()


atexit.register(_close_clients_at_exit)


def ensure_json_instruction(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI refuses JSON mode unless a message mentions JSON: make sure one does."""
    if any("json" in content_text(message["content"]).lower() for message in messages):
        return messages
    note = "Respond with a single JSON object."
    if messages and messages[0]["role"] == "system":
        first = {"role": "system", "content": f"{messages[0]['content']}\n\n{note}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


# OpenAI's own API (and Azure's) names the limit on an answer's length `max_completion_tokens`:
# its reasoning models refuse the older `max_tokens`. The servers that speak its protocol for
# other models all read `max_tokens`, and some read only that: llama-cpp-python's server ignores
# the newer name and writes on to the end of its context, a conversation's title included.
OPENAI_HOSTS = ("api.openai.com", ".openai.azure.com")


@functools.lru_cache(maxsize=16)
def _limit_field(base_url: str | None) -> str:
    if not base_url:
        return "max_completion_tokens"  # the SDK's own address: OpenAI's
    host = urlsplit(base_url).hostname or ""
    if host == OPENAI_HOSTS[0] or host.endswith(OPENAI_HOSTS[1]):
        return "max_completion_tokens"
    return "max_tokens"


def output_limit(tokens: int) -> dict[str, int]:
    """A request's limit on the answer's length, under the name its server reads."""
    return {_limit_field(_connection()[1]): tokens}


def build_request(parameters: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The keyword arguments of `chat.completions.create` for a reply."""
    request: dict[str, Any] = {
        "model": parameters["model"],
        "messages": messages,
        "temperature": parameters["temperature"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if parameters.get("max_completion_tokens"):
        request.update(output_limit(parameters["max_completion_tokens"]))
    if parameters.get("response_format") == "json_object":
        request["response_format"] = {"type": "json_object"}
        request["messages"] = ensure_json_instruction(messages)
    if parameters.get("logprobs"):
        request["logprobs"] = True
        request["top_logprobs"] = parameters.get("top_logprobs") or 0
    return request


def _logprobs_of(choice: dict[str, Any]) -> list[dict[str, Any]] | None:
    content = (choice.get("logprobs") or {}).get("content")
    if not content:
        return None
    return [
        {
            "token": item["token"],
            "logprob": item["logprob"],
            "top_logprobs": [
                {"token": alt["token"], "logprob": alt["logprob"]}
                for alt in (item.get("top_logprobs") or [])
            ],
        }
        for item in content
    ]


class ServerSentEvents:
    """The (event, data) pairs of a server-sent event stream, from its bytes as they arrive:
    every event a piece completes at once, with no step per line or per event.

    Lines end with `\n`, `\r\n` or `\r`; data lines accumulate until a blank line ends the
    event; comments (`:`) are skipped. A line is decoded once it is whole, so a character split
    between two pieces is read right.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, piece: bytes) -> list[tuple[str | None, str]]:
        lines = (self._pending + piece).splitlines(keepends=True)
        # The last line is whole once it ends: and a lone \r at the end may be half of \r\n.
        self._pending = b""
        if lines and (not lines[-1].endswith((b"\n", b"\r")) or lines[-1].endswith(b"\r")):
            self._pending = lines.pop()
        return self._read(lines)

    def end(self) -> list[tuple[str | None, str]]:
        """What the end of the stream completes: its last line, its last event."""
        found = self._read([self._pending] if self._pending else [])
        self._pending = b""
        if self._data:
            found.append((self._event, "\n".join(self._data)))
            self._event, self._data = None, []
        return found

    def _read(self, lines: list[bytes]) -> list[tuple[str | None, str]]:
        found: list[tuple[str | None, str]] = []
        for raw in lines:
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if not line:
                if self._data:
                    found.append((self._event, "\n".join(self._data)))
                self._event, self._data = None, []
                continue
            name, _colon, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
        return found


async def read_chunks(
    client: openai.AsyncOpenAI, request: dict[str, Any]
) -> AsyncIterator[list[dict[str, Any]]]:
    """The chunks of a streamed chat completion, as the JSON objects the server sent: those of
    each read of the connection together.

    The SDK sends the request (its auth, timeouts, retries and HTTP errors) through its
    client's `post`, the call its `chat.completions.create` makes once it has transformed its
    typed parameters into the body: the request here already is that body, plain JSON, and
    the transform walks every parameter the endpoint knows, about a millisecond of CPU a
    request (docs/benchmarks.md). The stream is read from the raw response: building a typed
    object per chunk costs about seven times the CPU of `json.loads`, and a busy server reads
    thousands of chunks a second; the events a read brings are parsed together, not through a
    chain of line and event iterators, one step each. An error event in the stream raises
    `ModelError`, as the SDK would raise.
    """
    response = await client.post(
        CHAT_COMPLETIONS_PATH, body=request, cast_to=httpx2.Response, stream=True
    )
    try:
        async with (
            contextlib.aclosing(response.aiter_bytes()) as pieces,
            contextlib.aclosing(chunk_batches(pieces)) as batches,
        ):
            async for chunks in batches:
                yield chunks
    finally:
        await response.aclose()


async def chunk_batches(pieces: AsyncIterator[bytes]) -> AsyncIterator[list[dict[str, Any]]]:
    """The chunk objects of a chat-completions stream, from its bytes, up to `[DONE]`: a list
    for each piece that completes any. A chunk that cannot be read, or an error event, raises
    once the chunks before it are out."""
    events = ServerSentEvents()
    async for piece in pieces:
        chunks, end = chunks_in(events.feed(piece))
        if chunks:
            yield chunks
        if end is not None:
            if isinstance(end, Exception):
                raise end
            return
    chunks, end = chunks_in(events.end())
    if chunks:
        yield chunks
    if isinstance(end, Exception):
        raise end


def chunks_in(
    events: list[tuple[str | None, str]],
) -> tuple[list[dict[str, Any]], Exception | bool | None]:
    """The chunk objects of some events, and what ended the stream among them: True for
    `[DONE]`, the exception a chunk that cannot be read or an error event raises, or None."""
    chunks = []
    for event, data in events:
        if data.startswith("[DONE]"):
            return chunks, True
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            return chunks, exc
        if not isinstance(chunk, dict):
            return chunks, ValueError("a chunk that is not a JSON object")
        if chunk.get("error") or event == "error":
            return chunks, _stream_error(chunk.get("error"))
        chunks.append(chunk)
    return chunks, None


def _stream_error(error: Any) -> ModelError:
    message = error.get("message") if isinstance(error, dict) else error
    logger.warning("the model server reported an error in its stream: %s", server_words(message))
    return ModelError(
        _("The model server reported an error while answering. Try again."),
        code="stream_error",
    )


async def stream_reply(request: dict[str, Any]) -> AsyncIterator[Event]:
    """Stream a reply as events. Any failure of the model's side raises `ModelError`.

    A stream that ends without a finish reason raises too: the SDK treats it as success.
    The HTTP response is closed however the iteration ends (stop, error, completion).
    """
    finish_reason = ""
    received = False
    try:
        # Closed here, however the reading ends: a generator left to the collector is closed
        # by a task the event loop is woken for, one per reply.
        async with contextlib.aclosing(read_chunks(get_client(), request)) as batches:
            async for chunks in batches:
                received = True
                for chunk in chunks:
                    choices = chunk.get("choices") or []
                    usage = chunk.get("usage")
                    if usage and not choices:
                        if not finish_reason:
                            continue
                        yield Finished(
                            finish_reason,
                            usage.get("prompt_tokens"),
                            usage.get("completion_tokens"),
                        )
                        return
                    for choice in choices:
                        text = (choice.get("delta") or {}).get("content")
                        logprobs = _logprobs_of(choice)
                        if text or logprobs:
                            yield Delta(text or "", logprobs)
                        if choice.get("finish_reason"):
                            finish_reason = choice["finish_reason"]
        if not received:
            # llama.cpp's Python server answers a request longer than its context window so:
            # the stream opens, and closes with nothing in it.
            raise ModelError(
                _(
                    "The model server closed the answer before writing anything. Try again. If "
                    "it happens again, the conversation may be longer than the model can read "
                    "at once (its context window): start a new conversation or shorten the "
                    "message; an administrator can set the model's context window under Models "
                    "in the admin."
                ),
                code="empty",
            )
        if not finish_reason:
            raise ModelError(
                _("The answer broke off before the model finished it. Try again."),
                code="incomplete",
            )
        yield Finished(finish_reason)
    except ModelError:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise describe_error(exc, request.get("model", "")) from exc


def _status_message(status: int, model: str) -> str:
    if status == 401:
        return _(
            "The model server refused the API key. An administrator needs to check OPENAI_API_KEY."
        )
    if status == 403:
        return _("The model server does not allow this account to use the model.")
    if status == 404:
        return _("The model “%(model)s” was not found on the model server.") % {"model": model}
    if status == 429:
        return _(
            "The model server is busy or the usage quota is used up. Wait a moment and try again."
        )
    if status == 400:
        return _(
            "The model server rejected the request (HTTP 400): the model may not support one of "
            "this conversation's settings."
        )
    if status >= 500:
        return _("The model server had an internal error (HTTP %(status)s). Try again.") % {
            "status": status
        }
    return _("The model server answered with an error (HTTP %(status)s).") % {"status": status}


def without_key(text: str) -> str:
    """Cut the API key out of a text from the model's server: some servers quote the request,
    some in capitals."""
    key = settings.OPENAI_API_KEY
    return re.sub(re.escape(key), "[API key]", text, flags=re.IGNORECASE) if key else text


def server_words(text: Any) -> str:
    """What the model's server wrote, for the log: without the key, and not a novel."""
    return without_key(str(text or "no reason given"))[:500]


def _could_not_connect(exc: BaseException) -> bool:
    """Nothing answered at the server's address (connection refused, no such host, no route).
    The SDK calls that a connection error, or a timeout when aiohttp carries its requests: the
    HTTP layer's own exception, further down the chain, tells."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, httpx2.ConnectError | httpx2.ConnectTimeout | ConnectionRefusedError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


# A request longer than the model reads: OpenAI, vLLM and llama.cpp's Python server answer
# HTTP 400 with the code `context_length_exceeded`; others only say so in words.
TOO_LONG = re.compile(r"context (length|window|size)|maximum context|too many tokens", re.I)


def too_long_message() -> str:
    return _(
        "This conversation is longer than the model can read at once (its context window). "
        "Start a new conversation or shorten the message; an administrator can set the "
        "model's context window under Models in the admin, so that the oldest messages are "
        "left out."
    )


def describe_error(exc: BaseException, model: str) -> ModelError:
    """Turn whatever the SDK or its HTTP layer raised into a sentence of our own for the user;
    the server's words go to the log."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        error = body.get("error", body) if isinstance(body, dict) else body
        code = error.get("code") if isinstance(error, dict) else None
        if isinstance(error, dict):
            error = error.get("message")
        logger.warning(
            "the model server answered HTTP %s for %s: %s",
            exc.status_code,
            model,
            server_words(error or exc.message),
        )
        if code == "context_length_exceeded" or TOO_LONG.search(str(error or "")):
            return ModelError(too_long_message(), code="context_too_long", status=exc.status_code)
        return ModelError(
            _status_message(exc.status_code, model),
            code=f"http_{exc.status_code}",
            status=exc.status_code,
        )
    name = type(exc).__name__
    if _could_not_connect(exc):
        logger.warning("the model server could not be reached: %s", server_words(exc.__cause__))
        return ModelError(
            _(
                "The model server could not be reached. An administrator needs to check that it "
                "is running and that OPENAI_BASE_URL points to it."
            ),
            code="unreachable",
        )
    if isinstance(exc, openai.APITimeoutError) or "Timeout" in name:
        return ModelError(
            _("The model server stopped responding, so the answer was cut short. Try again."),
            code="timeout",
        )
    if isinstance(exc, json.JSONDecodeError | ValueError) and not isinstance(
        exc, openai.OpenAIError
    ):
        return ModelError(
            _("The model server sent something that could not be read. Try again."),
            code="bad_chunk",
        )
    if isinstance(exc, openai.APIConnectionError) or "Error" in name:
        logger.warning("model connection failed: %s", name)
        return ModelError(
            _("The connection to the model server was lost. Try again."),
            code="connection",
        )
    logger.exception("unexpected failure while streaming a reply")
    return ModelError(_("Something went wrong while talking to the model."), code="unknown")


# A conversation's title, asked for once its first answer has ended (`replies.title_later`).
# The simulator knows the instruction by its first words: keep them.
TITLE_INSTRUCTION = (
    "Write a short title for this conversation: a few words (six at most), in the language of "
    "the user's message. Answer with the title alone, without quotes or a full stop."
)
# What of the first message the request carries: a title needs its start, not all of it.
TITLE_MESSAGE_CHARS = 2000
TITLE_MAX_TOKENS = 30
TITLE_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class TitleAnswer:
    """What a title request got: the model's text (None when it failed or said nothing), the
    messages sent, and the usage the server reported, if any (for the usage ledger)."""

    text: str | None
    messages: list[dict[str, str]]
    answered: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


# The app's client with the title request's options, one per client: a copy made per
# request would leave a cycle of the SDK's objects behind each time, for the full collection.
_title_clients: weakref.WeakKeyDictionary[openai.AsyncOpenAI, tuple[Any, openai.AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)


def _title_client() -> openai.AsyncOpenAI:
    client = get_client()
    timeout = openai.Timeout(
        TITLE_TIMEOUT_SECONDS, connect=min(TITLE_TIMEOUT_SECONDS, settings.OPENAI_CONNECT_TIMEOUT)
    )
    cached = _title_clients.get(client)
    if cached is not None and cached[0] == timeout:
        return cached[1]
    titles = client.with_options(timeout=timeout, max_retries=0)
    _title_clients[client] = (timeout, titles)
    return titles


async def ask_title(*, model: str, message: str) -> TitleAnswer:
    """The model's title for a conversation that begins with `message`.

    Not streamed, with a short timeout and no retry: a title is a nicety, and the conversation
    already has one (its first message, cut). A failure is logged by its kind only.

    Sent as the answers are (`read_chunks`): the body as plain JSON through the client's
    `post`, and the answer read as the JSON the server sent. `chat.completions.create` would
    transform its typed parameters and build a typed object of the answer, which cost a title
    about twice the CPU of an answer's request: at 200 first answers ending together, a fifth
    of the event loop's time went to their titles (docs/benchmarks.md).
    """
    messages = [
        {"role": "system", "content": TITLE_INSTRUCTION},
        {"role": "user", "content": message[:TITLE_MESSAGE_CHARS]},
    ]
    body = {"model": model, "messages": messages, **output_limit(TITLE_MAX_TOKENS)}
    try:
        answer = await _title_client().post(CHAT_COMPLETIONS_PATH, body=body, cast_to=object)
        text, usage = _title_of(answer)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.info(
            "the model gave no title (%s): the first message stays the title", type(exc).__name__
        )
        return TitleAnswer(None, messages)
    return TitleAnswer(
        text,
        messages,
        answered=True,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )


def _title_of(answer: Any) -> tuple[str | None, dict[str, Any]]:
    """The text and the usage of a chat completion, as the JSON the server sent (no text when
    its first choice has none); an answer that is not such an object raises ValueError."""
    if not isinstance(answer, dict):
        raise ValueError("an answer that is not a JSON object")
    choices = answer.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else {}
    message = first.get("message") if isinstance(first, dict) else None
    text = (message.get("content") if isinstance(message, dict) else None) or None
    if text is not None and not isinstance(text, str):
        raise ValueError("a title that is not text")
    usage = answer.get("usage")
    return text, usage if isinstance(usage, dict) else {}


def list_models(*, timeout: float | None = None) -> list[dict[str, Any]]:
    """The model cards of the server's `/v1/models`, as the JSON objects it sent (some servers
    add fields of their own: `catalog.sync_models` reads a few). Raises `ModelError` with a
    sentence of our own on any failure.

    Synchronous (the command and the admin are), with the app's timeouts and retries, or
    with `timeout` seconds and no retry; only the refresh of the admin's model list calls it,
    never a page view.
    """
    api_key, base_url = _connection()
    read = settings.OPENAI_READ_TIMEOUT if timeout is None else timeout
    connect = settings.OPENAI_CONNECT_TIMEOUT if timeout is None else timeout
    try:
        with openai.OpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=openai.Timeout(read, connect=connect),
            max_retries=settings.OPENAI_MAX_RETRIES if timeout is None else 0,
        ) as client:
            return [model.to_dict() for model in client.models.list()]
    except Exception as exc:
        error = describe_error(exc, "")
        if error.status == 404:
            error = ModelError(
                _("The model server offers no list of its models (GET /v1/models answered 404)."),
                code="http_404",
                status=404,
            )
        raise error from exc
