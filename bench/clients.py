"""The benchmarks' two clients, timed the same way: a logged-in chat socket sending a message and
reading its reply, and a direct stream of the same request from the simulator.

Every time is in seconds from a clock the caller starts (a burst's start, or a reply's
scheduled arrival), so a request that waits to be sent counts its wait.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

# A reply that has not ended by then has failed, as far as the benchmark is concerned.
REPLY_TIMEOUT_SECONDS = 120.0


@dataclass
class Timing:
    """One reply or stream: its first token, its last, the longest wait between two pieces of
    its text, and (for a reply) its `reply.ended` frame. Times from the caller's clock."""

    sent: float | None = None  # when the message went out (a socket late to open sends late)
    first: float | None = None
    last: float | None = None
    ended: float | None = None
    largest_gap: float = 0.0
    produced: int = 0  # tokens the model produced (its usage)
    delivered: int = 0  # of those, the share whose text reached the client through the stream
    in_order: bool = True
    error: str = ""

    def text_arrived(self, now: float) -> None:
        if self.last is not None:
            self.largest_gap = max(self.largest_gap, now - self.last)
        if self.first is None:
            self.first = now
        self.last = now

    @property
    def ok(self) -> bool:
        return not self.error and self.first is not None


# Sessions and conversations, made through the ORM in this process before a run.


def login_cookie(user: Any) -> str:
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def make_users(count: int) -> list[tuple[Any, str]]:
    """`count` new users, each logged in: (user, its session cookie)."""
    from django.contrib.auth import get_user_model

    run = uuid.uuid4().hex[:6]
    users = []
    for i in range(count):
        user = get_user_model().objects.create_user(f"bench-{run}-{i}", password=None)
        users.append((user, login_cookie(user)))
    return users


def make_sessions(count: int) -> list[tuple[str, str]]:
    """`count` users, each with a new conversation: (session cookie, conversation id)."""
    from conversations import services

    return [
        (cookie, str(services.start_conversation(user=user).pk))
        for user, cookie in make_users(count)
    ]


def make_conversations(users: list[tuple[Any, str]], count: int) -> list[tuple[str, str]]:
    """`count` new conversations with the default persona, owned by `users` in turn:
    (session cookie, conversation id). Stored in bulk, as `services.start_conversation`
    would store each: a run of thousands of replies needs thousands of fresh conversations
    (a reused one would grow the context every reply sends)."""
    from conversations.models import Conversation, Persona

    persona = Persona.objects.default()
    made = []
    for i in range(count):
        user, cookie = users[i % len(users)]
        conversation = Conversation(user=user, persona=persona)
        if persona is not None:
            for name, value in persona.settings_dict().items():
                setattr(conversation, name, value)
        made.append((cookie, conversation))
    Conversation.objects.bulk_create([c for _, c in made], batch_size=500)
    return [(cookie, str(conversation.pk)) for cookie, conversation in made]


# The chat socket.


async def open_socket(base: str, cookie: str, conversation_id: str) -> Any:
    """A chat socket on `conversation_id`, as a page of server `base` opens it, once `ready`."""
    import websockets

    url = base.replace("http", "ws") + f"/ws/conversations/{conversation_id}/"
    headers = {"Cookie": cookie, "Origin": base}  # a page of that server
    socket = await websockets.connect(
        url, additional_headers=headers, max_size=None, open_timeout=REPLY_TIMEOUT_SECONDS
    )
    frame = json.loads(await socket.recv())
    if frame["type"] != "ready":
        await socket.close()
        raise RuntimeError(f"the socket said {frame}")
    return socket


async def send_and_read(socket: Any, prompt: str, started: float) -> Timing:
    """Send `prompt` on a ready socket and read its reply to `reply.ended`.

    A reply's text arrives as deltas (`seq` checked: in order, none missing) or as a state
    (its whole text so far, when the socket catches up): the last token is the last frame
    that brought text. Times from `started` (a `perf_counter` value).
    """
    timing = Timing()
    frame = {"type": "message.send", "client_id": uuid.uuid4().hex, "content": prompt}
    timing.sent = time.perf_counter() - started
    await socket.send(json.dumps(frame))
    seq, text = 0, ""
    try:
        async with asyncio.timeout(REPLY_TIMEOUT_SECONDS):
            while True:
                frame = json.loads(await socket.recv())
                now = time.perf_counter() - started
                kind = frame["type"]
                if kind == "reply.delta":
                    if frame["seq"] != seq + 1:
                        timing.in_order = False
                    seq = frame["seq"]
                    if frame["text"]:
                        text += frame["text"]
                        timing.text_arrived(now)
                elif kind == "reply.state":
                    if frame["content"] != text:
                        timing.text_arrived(now)
                    seq, text = frame["seq"], frame["content"]
                elif kind == "reply.ended":
                    timing.ended = now
                    message = frame["message"]
                    final = message["content"]
                    produced = (message.get("usage") or {}).get("completion_tokens") or 0
                    timing.produced = produced
                    shown = len(text) if final.startswith(text) else 0
                    timing.delivered = round(produced * shown / max(1, len(final)))
                    if message["status"] != "complete":
                        timing.error = f"ended {message['status']}: {message.get('error')}"
                    return timing
                elif kind == "error":
                    timing.error = f"{frame.get('code')}: {frame.get('message')}"
                    return timing
    except TimeoutError:
        timing.error = "no end within the timeout"
    except Exception as exc:  # the server closed the socket (1011: an error in the consumer)
        timing.error = repr(exc)
    return timing


# The direct stream.


def direct_request(prompt: str) -> dict[str, Any]:
    """The request the app sends for `prompt` as the first message of a new conversation with
    the default persona: its system prompt, its temperature, its model."""
    from conversations import llm
    from conversations.models import Persona

    persona = Persona.objects.default()
    assert persona is not None
    parameters = {**persona.settings_dict(), "model": persona.effective_model}
    messages = [{"role": "user", "content": prompt}]
    if persona.system_prompt:
        messages.insert(0, {"role": "system", "content": persona.system_prompt})
    return llm.build_request(parameters, messages)


def direct_client(base_url: str, *, aiohttp: bool = False) -> Any:
    """A plain `AsyncOpenAI` client: the SDK's defaults, or its aiohttp transport (the app's)."""
    from openai import AsyncOpenAI, DefaultAioHttpClient

    extra = {"http_client": DefaultAioHttpClient()} if aiohttp else {}
    return AsyncOpenAI(api_key="bench", base_url=base_url, max_retries=0, timeout=120, **extra)


async def direct_chunks(client: Any, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """A stream as a plain client asks for it, `chat.completions.create`, read as the app reads
    a stream: its raw bytes, the events of each read together, one `json.loads` a chunk
    (`llm.chunk_batches`)."""
    from conversations import llm

    async with client.chat.completions.with_streaming_response.create(**request) as response:
        async for chunks in llm.chunk_batches(response.iter_bytes()):
            for chunk in chunks:
                yield chunk


async def direct_stream(client: Any, request: dict[str, Any], started: float) -> Timing:
    """Stream `request` straight from the simulator; times from `started`."""
    timing = Timing()
    try:
        async with asyncio.timeout(REPLY_TIMEOUT_SECONDS):
            async for chunk in direct_chunks(client, request):
                now = time.perf_counter() - started
                choices = chunk.get("choices") or []
                if choices and (choices[0].get("delta") or {}).get("content"):
                    timing.text_arrived(now)
                usage = chunk.get("usage")
                if usage and not choices:
                    timing.produced = timing.delivered = usage.get("completion_tokens") or 0
    except Exception as exc:
        timing.error = repr(exc)
    timing.ended = timing.last
    return timing
