"""A reply's life: the task that streams it, batched saves, statuses, leases, group events.

A reply belongs to the server process, not to a socket. `start` prepares the rows through
`services` and launches a task kept in this module's registry; closing the tab does not stop it.

Its events go to the conversation's channel group, so every socket showing the conversation
receives them, whichever process it lives in (with Redis, across processes). The runner listens
on a channel of its own, named in the reply's row, for `stop` and catch-up requests from any
process.

The text is saved in batches by time (`CHAT_FLUSH_SECONDS`), never once per token; every save
renews the reply's lease. A reply whose lease runs out has no process producing it any more and
is swept to `interrupted`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from . import attachments, context, database, llm, services
from .accounts import user_group
from .errors import ChatError
from .models import CallKind, Conversation, Message, ModelCall, Status
from .protocol import conversation_frame, message_payload

logger = logging.getLogger(__name__)
T = TypeVar("T")

FINISH_STATUS = {
    "stop": Status.COMPLETE,
    "length": Status.TRUNCATED,
    "content_filter": Status.FILTERED,
    "tool_calls": Status.COMPLETE,
    "function_call": Status.COMPLETE,
}
# The endings where the model answered (even with nothing): its tokens count.
ANSWERED = frozenset({Status.COMPLETE, Status.TRUNCATED, Status.FILTERED})
# The endings of a conversation's first answer after which the model is asked for its title.
TITLED_AFTER = frozenset({Status.COMPLETE, Status.TRUNCATED})


# The most tokens' logprobs one delta frame carries.
LOGPROBS_PER_DELTA = 100

# A token that arrives later than this after the reader was ready for it had to be waited for.
READ_DRAINED_SECONDS = 0.001


def group_name(conversation_id: Any) -> str:
    return f"conversation.{conversation_id}"


async def send_to_group(conversation_id: Any, *frames: dict[str, Any]) -> None:
    """Send frames to every socket showing the conversation; several go as one message."""
    await send_frames(group_name(conversation_id), *frames)


async def send_frames(group: str, *frames: Mapping[str, Any]) -> None:
    """Send frames to every socket of a group: a conversation's, or all of a user's
    (`accounts.user_group`, whose sockets' sidebars list every conversation of theirs).

    This process's own sockets (`listen`) are handed them at once, in the sender's step, so
    they see what the process sends in the order it sends it; the channel layer carries them
    to the other processes' sockets (with the one-process layer there are none), marked so
    that a socket here passes over its copy (`sent_here`). Through the layer, a frame would
    reach a socket of the same process three turns of the event loop later (the layer's
    queue, channels' receive task, the consumer's own task): on a busy process a turn is
    tens of milliseconds, which every delta of a reply waited (docs/benchmarks.md).

    Raises what the channel layer raised, once the sockets here have the frames; a layer that
    does not answer within PUBLISH_TIMEOUT_SECONDS raises TimeoutError."""
    for listener in list(_listeners().get(group, ())):
        try:
            await listener.group_frames(list(frames))
        except Exception:
            logger.exception("handing frames of %s to a socket failed", group)
    layer = get_channel_layer()
    if getattr(layer, "one_process", False):
        return
    event: dict[str, Any] = (
        {"type": "chat.event", "frame": frames[0]}
        if len(frames) == 1
        else {"type": "chat.events", "frames": list(frames)}
    )
    event["origin"] = _origin()
    async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
        await layer.group_send(group, event)


# A publish that takes longer than this has failed: the layer is down or unreachable.
PUBLISH_TIMEOUT_SECONDS = 2.0
# How long a reply's end is offered to a failing layer before the tabs are left to find it in
# the database (a socket that hears nothing of a reply looks there within half a lease).
END_RETRY_SECONDS = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class Outcome:
    """How a reply ended: what its final save writes."""

    status: str
    finish_reason: str = ""
    error: str = ""
    usage: llm.Finished | None = None


# Tasks of the replies this process is producing. asyncio keeps only weak references to tasks,
# so without this a running reply could be garbage-collected mid-stream.
_running: dict[int, ReplyRunner] = {}

# Stops that reached this process for a reply stored but not started yet (the moment between
# its row's commit and its task's start): honoured when it starts. Kept a short while, bounded.
_early_stops: dict[int, float] = {}
EARLY_STOP_SECONDS = 30.0
EARLY_STOPS_KEPT = 1000


def _remember_stop(reply_id: int) -> None:
    now = time.monotonic()
    for old in [r for r, at in _early_stops.items() if now - at > EARLY_STOP_SECONDS]:
        del _early_stops[old]
    if len(_early_stops) >= EARLY_STOPS_KEPT:
        del _early_stops[next(iter(_early_stops))]
    _early_stops[reply_id] = now


def delta_interval() -> float:
    """Seconds between a reply's deltas: `CHAT_DELTA_SECONDS`, or longer under load.

    All the replies this process streams send at most `CHAT_DELTAS_PER_SECOND` deltas
    together: a socket frame and a channel-layer message each, which a busy process (and a
    Redis layer, one round trip per message) must not fall behind on. A reply's first
    token still goes at once; later deltas carry more tokens each.
    """
    return max(settings.CHAT_DELTA_SECONDS, len(_running) / settings.CHAT_DELTAS_PER_SECOND)


def one_per_loop(make: Callable[[], T]) -> Callable[[], T]:
    """A function giving the running event loop's own `make()`: one per process under daphne,
    one per test's loop in tests (what a loop's tasks share must not outlive it)."""
    made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def of_this_loop() -> T:
        loop = asyncio.get_running_loop()
        found = made.get(loop)
        if found is None:
            found = made[loop] = make()
        return found

    return of_this_loop


class Listener(Protocol):
    """A socket (or the terminal chat) of this process, in a group (`listen`). Every listener
    is handed the same frames: it reads them and changes none."""

    async def group_frames(self, frames: list[dict[str, Any]]) -> None: ...


# This process's listeners of each group, one registry per event loop.
_listeners: Callable[[], dict[str, set[Listener]]] = one_per_loop(dict)
# Marks what an event loop publishes: its own listeners had it already. One mark per loop: what
# a loop of its own sends (a sync view's in a test) reaches this loop's sockets by the layer.
_origin: Callable[[], str] = one_per_loop(lambda: secrets.token_hex(8))


def listen(group: str, listener: Listener) -> None:
    """Have what this process sends to the group (`send_frames`) handed to `listener` at once."""
    _listeners().setdefault(group, set()).add(listener)


def stop_listening(group: str, listener: Listener) -> None:
    listeners = _listeners().get(group)
    if listeners is not None:
        listeners.discard(listener)
        if not listeners:
            del _listeners()[group]


def sent_here(event: Mapping[str, Any]) -> bool:
    """A group message this process's listeners were handed already (`send_frames`)."""
    return event.get("origin") == _origin()


def running_replies() -> dict[int, ReplyRunner]:
    return dict(_running)


async def wait_for_replies() -> None:
    """Wait until this process has no reply streaming, nor a title asked after one (tests, the
    terminal chat's end)."""
    tasks = [runner.task for runner in _running.values() if runner.task is not None]
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    titles = pending_titles()
    if titles:
        await asyncio.gather(*titles, return_exceptions=True)


def pending_titles() -> list[asyncio.Task[None]]:
    """This event loop's title requests not done yet (asked after answers that ended)."""
    loop = asyncio.get_running_loop()
    return [task for task in _titles if task.get_loop() is loop and not task.done()]


# Title requests asked for and not done (asyncio keeps only weak references to tasks).
_titles: set[asyncio.Task[None]] = set()
# Title requests of one process in flight at once; the others wait their turn. A title is not
# urgent, the ends of other replies are: at 200 first answers ending together, their 200
# title requests built and sent at once held the last `reply.ended` frames 400 ms behind their
# answers' last token instead of 190 (docs/benchmarks.md).
TITLES_AT_ONCE = 4
title_turns = one_per_loop(lambda: asyncio.Semaphore(TITLES_AT_ONCE))
# A title that waited this long for its turn is given up (the first message, cut, stays): more
# new conversations a second than the model answers titles for would otherwise queue them,
# and their tasks, without end.
TITLE_WAIT_SECONDS = 30.0


def title_later(conversation: Conversation, cut_title: str, first_message: str, model: str) -> None:
    """Ask the model for a conversation's title, in a task of its own, once its first answer
    has ended: outside the reply and any transaction, and the answer's end is not held up;
    at most `TITLES_AT_ONCE` at a time in a process, none after `TITLE_WAIT_SECONDS` waiting.

    Its tokens are the user's, written to the usage ledger as a call of its own (kind
    `title`); it does not count against their `CHAT_MESSAGES_PER_MINUTE`: the app asks, once
    per conversation, after a message that was counted, and a user who sends their twentieth
    message of the minute is not refused because of titles they never asked for.
    """
    task = asyncio.create_task(
        _title(conversation.pk, conversation.user_id, cut_title, first_message, model),
        name=f"title-{conversation.pk}",
        context=contextvars.Context(),
    )
    _titles.add(task)
    task.add_done_callback(_titles.discard)


def _save_title(
    call: ModelCall, answer: llm.TitleAnswer, conversation_id: Any, cut_title: str, title: str
) -> bool:
    """Write the title call's row in the usage ledger (its tokens counted here when the
    server reported none) and, when the model gave a new title, set it; whether it changed."""
    prompt, completion = answer.prompt_tokens, answer.completion_tokens
    if answer.answered and (prompt is None or completion is None):
        call.estimated = True
        if prompt is None:
            prompt = context.prompt_tokens(answer.messages, call.model)
        if completion is None:
            completion = context.count_tokens(answer.text or "", call.model)
    call.prompt_tokens, call.completion_tokens = prompt, completion
    call.status = Status.COMPLETE if answer.answered else Status.ERROR
    call.ended_at = timezone.now()
    with transaction.atomic():
        call.save(force_insert=True)
        if not title or title == cut_title:
            return False
        return services.set_model_title(
            conversation_id=conversation_id, replaces=cut_title, title=title
        )


def _save_interrupted_title(call: ModelCall) -> None:
    call.status, call.ended_at = Status.INTERRUPTED, timezone.now()
    call.save(force_insert=True)


async def _title(
    conversation_id: Any, user_id: Any, cut_title: str, first_message: str, model: str
) -> None:
    turns = title_turns()
    try:
        async with asyncio.timeout(TITLE_WAIT_SECONDS):
            await turns.acquire()
    except TimeoutError:
        logger.warning(
            "the title of conversation %s was given up: too many waiting", conversation_id
        )
        return
    call = ModelCall(
        user_id=user_id, conversation_id=conversation_id, model=model, kind=CallKind.TITLE
    )
    try:
        try:
            answer = await llm.ask_title(model=model, message=first_message)
        except asyncio.CancelledError:
            # Given up while the model wrote it (the process is shutting down): the ledger
            # says the call was made and how it ended, with no tokens, as for a reply whose
            # process stopped; the first message stays the title.
            await asyncio.shield(database.in_database(_save_interrupted_title)(call))
            raise
        title = services.tidy_title(answer.text or "")
        try:
            changed = await database.in_database(_save_title)(
                call, answer, conversation_id, cut_title, title
            )
        except Exception:
            logger.exception("saving the title of conversation %s failed", conversation_id)
            return
    finally:
        turns.release()
    if not changed:
        return  # no new title, or renamed (or deleted) meanwhile
    frame = {
        "type": "conversation.updated",
        "conversation": {"id": str(conversation_id), "title": title},
    }
    try:
        # Every tab of the owner: each one's sidebar lists the conversation.
        await send_frames(user_group(user_id), frame)
    except Exception as exc:
        # The tabs show the cut title until they load a page again.
        logger.warning("the title of conversation %s reached no tab (%r)", conversation_id, exc)


class ReplyRunner:
    """Streams one reply from the model to the group and into the database."""

    def __init__(self, prepared: Any) -> None:
        self.reply: Message = prepared.reply
        self.conversation: Conversation = prepared.conversation
        self.request: dict[str, Any] = prepared.request
        # The first message, when it gave the conversation its title: once this reply has
        # ended, the model is asked for a better one (`CHAT_MODEL_TITLES`).
        self.first_message: str | None = (
            prepared.created[0].content if getattr(prepared, "titled", False) else None
        )
        self.parts: list[str] = []
        self.logprobs: list[dict[str, Any]] = []
        # Deltas sent so far: `seq` of them, holding `published_text` (parts[:published]).
        self.seq = 0
        self.published = 0
        self.published_logprobs = 0
        self.published_text = ""
        self.saved_seq = 0
        # A continued reply (Continue) goes on from its text so far: its deltas follow its
        # saved ones, its usage adds to what it used before, and the tabs are told it streams
        # again before its first new delta (`restart`).
        self.restart: dict[str, Any] | None = None
        self.usage_before: dict[str, Any] = {}
        # This call's row in the usage ledger: the reply's own, or a continuation's.
        self.call_id: int | None = getattr(prepared, "call_id", None) or self.reply.model_call_id
        if getattr(prepared, "continued", False):
            reply = self.reply
            self.parts = [reply.content]
            self.published = 1
            self.published_text = reply.content
            self.seq = self.saved_seq = reply.seq
            self.logprobs = list(reply.logprobs or [])
            self.published_logprobs = len(self.logprobs)
            self.restart = {"type": "message.updated", "message": message_payload(reply)}
            self.usage_before = {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "usage_estimated": reply.usage_estimated,
            }
        self.text_before = len(self.published_text)
        self.logprobs_before = len(self.logprobs)
        self.lease_renewed_at = time.monotonic()
        self._wake = asyncio.Event()
        self._closing = False
        self._closed = asyncio.Event()
        # When the publisher may send the next delta (the event loop's clock).
        self.next_delta_at = 0.0
        # The last publish failed: the next one sends the whole text so far (a state), which
        # replaces the deltas the tabs missed.
        self.publish_failed = False
        self.stop_requested = False
        self.task: asyncio.Task[None] | None = None
        self._stream_task: asyncio.Task[llm.Finished | None] | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def start(self, language: str | None) -> None:
        # A context of its own: a task inherits its creator's, and a request's (an async view
        # behind Django's sync middleware) sends database calls to a thread that ends with the
        # request, which the reply outlives. Only the language is carried over.
        self.task = asyncio.create_task(
            self.run(language),
            name=f"reply-{self.reply.pk}",
            context=contextvars.Context(),
        )
        _running[self.reply.pk] = self
        if _early_stops.pop(self.reply.pk, None) is not None:
            self.stop_requested = True

    async def run(self, language: str | None = None) -> None:
        """Produce the reply, then end it whatever happened: every way out is a status."""
        if language:
            translation.activate(language)
        progress_saves().add(self)
        publisher = asyncio.create_task(self._publish())
        outcome = Outcome(
            Status.ERROR, error=_("Something went wrong on the server while writing this answer.")
        )
        try:
            outcome = await self._produce()
        except asyncio.CancelledError:
            # Not a stop: the task itself was cancelled (the server process is shutting down).
            outcome = Outcome(
                Status.INTERRUPTED,
                error=_("The server was restarted while this answer was being written."),
            )
            raise
        except Exception:
            logger.exception("reply %s failed", self.reply.pk)
        finally:
            await self._teardown(publisher, outcome)

    async def _produce(self) -> Outcome:
        if self.stop_requested:  # stopped before it started
            return Outcome(Status.STOPPED)
        self._stream_task = asyncio.create_task(self._stream())
        try:
            finished = await self._stream_task
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.stop_requested and not (task and task.cancelling()):
                return Outcome(Status.STOPPED)
            raise
        except llm.ModelError as exc:
            logger.info("reply %s failed: %s", self.reply.pk, exc.code)
            return Outcome(Status.ERROR, error=exc.message)
        reason = finished.finish_reason if finished else ""
        return Outcome(FINISH_STATUS.get(reason, Status.COMPLETE), reason, usage=finished)

    async def _teardown(self, publisher: asyncio.Task[None], outcome: Outcome) -> None:
        """Stop publishing, leave the progress saves, save the end, tell the tabs, leave the
        running set: each step whatever the one before it raised."""
        self._closing = True
        self._wake.set()
        self._closed.set()
        try:
            await publisher
        except Exception:
            logger.exception("publishing reply %s failed", self.reply.pk)
        finally:
            progress_saves().discard(self)
        try:
            reply = await asyncio.shield(end_saves().save(self, outcome))
        except Exception:
            # Its lease runs out and a sweep marks it interrupted.
            logger.exception("saving the end of reply %s failed", self.reply.pk)
            _running.pop(self.reply.pk, None)
            return
        _running.pop(self.reply.pk, None)
        # Its place among its versions is as it started: nothing adds a version to a
        # conversation while one of its replies streams (`reply_in_progress`).
        reply.version = getattr(self.reply, "version", 1)
        reply.versions = getattr(self.reply, "versions", 1)
        await self._announce_end(reply)
        if (
            self.first_message is not None
            and reply.status in TITLED_AFTER
            and settings.CHAT_MODEL_TITLES
        ):
            title_later(
                self.conversation,
                self.conversation.title,
                self.first_message,
                self.request.get("model", ""),
            )

    async def _stream(self) -> llm.Finished | None:
        """Read the model's stream. Only this task is cancelled by a stop: it writes nowhere."""
        finished: llm.Finished | None = None
        loop = asyncio.get_running_loop()
        ready_at = loop.time()
        request = await attachments.with_images(self.request)
        async for event in llm.stream_reply(request):
            arrived = loop.time()
            if isinstance(event, llm.Finished):
                finished = event
                continue
            self.parts.append(event.text)
            if event.logprobs:
                self.logprobs.extend(event.logprobs)
            not_due = self.next_delta_at - loop.time()
            if arrived - ready_at > READ_DRAINED_SECONDS and not_due > 0:
                # This token was waited for (nothing more had arrived) and the next delta is
                # not due: the tokens that come until it is wait in the connection's buffer
                # and are read together then, with this one, one wake-up of this task
                # instead of one per token. Not longer: the stream's end, read then, goes
                # out with the last tokens.
                await asyncio.sleep(not_due)
            self._wake.set()
            ready_at = loop.time()
        return finished

    async def _publish(self) -> None:
        """Send what arrived as deltas: at once when idle, then at most every `delta_interval`.

        The first token goes out immediately; under a fast stream several tokens share one
        delta, which keeps channel-layer messages and socket frames per second bounded. A
        failing channel layer costs the tabs their live view for a while, never the reply.
        """
        if self.restart is not None:
            # Before any new delta and before the end, from this same task: in order.
            try:
                await send_to_group(self.conversation.pk, self.restart)
            except Exception as exc:
                logger.warning("announcing reply %s going on failed (%r)", self.reply.pk, exc)
                self.publish_failed = True
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._send_pending()
            if self._closing:
                await self._send_pending()
                return
            # The next delta waits its interval; the reply's end does not: the last tokens
            # and then `reply.ended` go at once.
            interval = delta_interval()
            self.next_delta_at = asyncio.get_running_loop().time() + interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._closed.wait()

    async def _send_pending(self) -> None:
        if self.published == len(self.parts):
            return
        text = "".join(self.parts[self.published :])
        self.published = len(self.parts)
        self.published_text += text
        frames: list[dict[str, Any]] = []
        # The tokens' logprobs go in pieces (20 alternatives a token make a kilobyte): a delta
        # that waited behind many tokens is split, each frame far below the socket's limit.
        while not frames or len(self.logprobs) > self.published_logprobs:
            self.seq += 1
            frame: dict[str, Any] = {
                "type": "reply.delta",
                "reply_id": self.reply.pk,
                "seq": self.seq,
                "text": "" if frames else text,
            }
            if len(self.logprobs) > self.published_logprobs:
                end = self.published_logprobs + LOGPROBS_PER_DELTA
                frame["logprobs"] = self.logprobs[self.published_logprobs : end]
                self.published_logprobs = min(end, len(self.logprobs))
            frames.append(frame)
        if self.publish_failed:
            frames = [self.snapshot()]  # everything so far, in place of the deltas missed
        try:
            await send_to_group(self.conversation.pk, *frames)
        except Exception as exc:
            if not self.publish_failed:
                logger.warning(
                    "publishing reply %s failed (%r); it goes on and its tabs catch up",
                    self.reply.pk,
                    exc,
                )
            self.publish_failed = True
        else:
            self.publish_failed = False

    def snapshot(self) -> dict[str, Any]:
        """The reply as sent so far, for a socket catching up."""
        return {
            "type": "reply.state",
            "reply_id": self.reply.pk,
            "seq": self.seq,
            "content": self.published_text,
            "status": Status.STREAMING,
        }

    def stop(self) -> None:
        self.stop_requested = True
        if self._stream_task is not None and not self._stream_task.done():
            self._stream_task.cancel()

    def progress(self, now: float) -> services.Progress | None:
        """What to save of this reply now: its new text, or its lease alone when it is due."""
        if self.seq != self.saved_seq:
            return services.Progress(self.reply.pk, self.seq, self.published_text)
        if now - self.lease_renewed_at >= settings.CHAT_LEASE_SECONDS / 3:
            return services.Progress(self.reply.pk, self.seq, None)
        return None

    def saved(self, progress: services.Progress, now: float) -> None:
        self.saved_seq = max(self.saved_seq, progress.seq)
        self.lease_renewed_at = now

    async def _announce_end(self, reply: Message) -> None:
        """Tell every tab the reply ended, trying again a few times while the layer fails.
        A tab that never hears it finds the end in the database (the consumer's watchdog)."""
        frame = {"type": "reply.ended", "message": message_payload(reply)}
        for pause in (*END_RETRY_SECONDS, None):
            try:
                await send_to_group(self.conversation.pk, frame)
                return
            except Exception as exc:
                if pause is None:
                    logger.warning("reply %s ended unannounced (%r)", self.reply.pk, exc)
                    return
                await asyncio.sleep(pause)

    def call_usage(self, outcome: Outcome) -> dict[str, Any]:
        """The tokens this call used, as the model's server reported them, else counted here
        (a continued answer's earlier calls are not this call's).

        Some servers send no usage (llama.cpp's, a few proxies), and a stopped reply never
        receives it: the prompt is then counted as the context window counts it and the answer
        with the same counter, and the figure is marked estimated. A reply the model never
        answered (refused, unreachable, stopped before it began) used nothing to count.
        """
        reported = outcome.usage
        prompt = reported.prompt_tokens if reported else None
        completion = reported.completion_tokens if reported else None
        new_text = self.text[self.text_before :]
        answered = bool(new_text) or outcome.status in ANSWERED
        if (prompt is not None and completion is not None) or not answered or not self.request:
            return {"prompt_tokens": prompt, "completion_tokens": completion}
        model = self.request.get("model", "")
        if prompt is None:
            prompt = context.prompt_tokens(self.request.get("messages") or [], model)
        if completion is None:
            # Asked for, the model's probabilities come one a token it wrote: their number is
            # its own count, where the app's counter only estimates another model's tokenizer.
            probabilities = len(self.logprobs) - self.logprobs_before
            completion = probabilities or context.count_tokens(new_text, model)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "usage_estimated": True}

    def _add_usage_before(self, usage: dict[str, Any]) -> dict[str, Any]:
        """A continued reply's tokens: those of its earlier calls and of this one."""
        if not self.usage_before:
            return usage
        total = dict(usage)
        for key in ("prompt_tokens", "completion_tokens"):
            before, now = self.usage_before[key], usage[key]
            total[key] = now if before is None else before + (now or 0)
        if self.usage_before["usage_estimated"]:
            total["usage_estimated"] = True
        return total

    def end(self, outcome: Outcome) -> services.End:
        """What to save of the reply's end (in a database thread: the usage may be counted).

        The reply keeps a copy of its tokens, all its calls' (exported with it); the ledger's
        row of this call takes this call's alone."""
        call_usage = self.call_usage(outcome)
        final = {
            "content": self.text,
            "seq": self.seq,
            "finish_reason": outcome.finish_reason,
            "error": outcome.error,
            "logprobs": self.logprobs or None,
            **self._add_usage_before(call_usage),
        }
        return services.End(
            self.reply.pk,
            self.conversation.pk,
            outcome.status,
            final,
            self.call_id,
            call_usage if self.usage_before else None,
        )


Ending = tuple[ReplyRunner, Outcome, "asyncio.Future[Message]"]


class EndSaves:
    """The ends of the replies one process streams, saved together (group commit).

    A reply that ends while other ends are being saved waits for that trip and goes in the
    next, with every reply that ended meanwhile: one trip to the database thread and one
    transaction for all of them (`services.save_ends`). Replies that end together, as a burst
    of them does, no longer queue one trip each before their `reply.ended`.
    """

    def __init__(self) -> None:
        self.waiting: list[Ending] = []
        self.task: asyncio.Task[None] | None = None

    def save(self, runner: ReplyRunner, outcome: Outcome) -> asyncio.Future[Message]:
        loop = asyncio.get_running_loop()
        saved: asyncio.Future[Message] = loop.create_future()
        self.waiting.append((runner, outcome, saved))
        if self.task is None or self.task.done():
            self.task = loop.create_task(
                self._run(), name="reply end saves", context=contextvars.Context()
            )
        return saved

    async def _run(self) -> None:
        batch: list[Ending] = []
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, []
                results = await database.in_database(_save_ends)(batch)
                for (_runner, _outcome, saved), result in zip(batch, results, strict=True):
                    _settle(saved, result)
                batch = []
        except BaseException as exc:
            # The database thread itself failed, or the process is going away: no reply
            # waits for a trip that will not come.
            for _runner, _outcome, saved in batch + self.waiting:
                _settle(saved, exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            self.waiting = []
            raise


def _save_ends(batch: list[Ending]) -> list[Message | Exception]:
    """In a database thread: each reply's end values, then all of them saved together."""
    ends: list[services.End] = []
    results: list[Message | Exception | None] = []
    for runner, outcome, _saved in batch:
        try:
            ends.append(runner.end(outcome))
            results.append(None)
        except Exception as exc:  # this reply's own failure
            results.append(exc)
    saved = iter(services.save_ends(ends) if ends else [])
    return [next(saved) if result is None else result for result in results]


def _settle(future: asyncio.Future[Message], result: Message | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


# This process's (event loop's) saves of its replies' ends.
end_saves = one_per_loop(EndSaves)


class ProgressSaves:
    """The periodic saves of every reply one process streams: one batch for all of them.

    Every `CHAT_FLUSH_SECONDS` (at most a third of the lease) the text each reply has sent
    since its last save is written, and the lease of a reply with nothing new is renewed, in
    one trip to the database thread and one transaction (`services.save_progress`: an UPDATE
    of each reply with new text, one for the other leases). A reply's writes grow with its
    duration, not its tokens; a process streaming a few hundred replies makes one trip a
    second, not one per reply.
    """

    def __init__(self) -> None:
        self.runners: set[ReplyRunner] = set()
        self.task: asyncio.Task[None] | None = None

    def add(self, runner: ReplyRunner) -> None:
        self.runners.add(runner)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(
                self._run(), name="reply progress saves", context=contextvars.Context()
            )

    def discard(self, runner: ReplyRunner) -> None:
        self.runners.discard(runner)

    async def _run(self) -> None:
        interval = min(settings.CHAT_FLUSH_SECONDS, settings.CHAT_LEASE_SECONDS / 3)
        while self.runners:
            await asyncio.sleep(interval)
            try:
                await self.save_due()
            except Exception:
                # The next round saves the text again; the lease outlives a missed round.
                logger.exception("saving the streaming replies failed; trying again")

    async def save_due(self) -> None:
        now = time.monotonic()
        due = [(runner, runner.progress(now)) for runner in list(self.runners)]
        due = [(runner, progress) for runner, progress in due if progress is not None]
        if not due:
            return
        lease_until = timezone.now() + timedelta(seconds=settings.CHAT_LEASE_SECONDS)
        await database.in_database(services.save_progress)([p for _, p in due], lease_until)
        for runner, progress in due:
            runner.saved(progress, now)


# This process's (event loop's) periodic saves of its streaming replies.
progress_saves = one_per_loop(ProgressSaves)


# Each process (event loop) listens on one channel for the stop and catch-up requests of all
# the replies it runs, sent from any process; a reply's row names it. One subscription per
# process, made once, rather than one per reply.
_controls: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Any, asyncio.Task[str]]] = (
    weakref.WeakKeyDictionary()
)
_control_listeners: set[asyncio.Task[None]] = set()


async def control_channel() -> str:
    """This process's control channel, opened (and listened on) at its first use."""
    loop = asyncio.get_running_loop()
    layer = get_channel_layer()
    entry = _controls.get(loop)
    if entry is None or entry[0] is not layer or _failed(entry[1]):
        opening = loop.create_task(_open_control(layer), context=contextvars.Context())
        entry = _controls[loop] = (layer, opening)
    return await asyncio.shield(entry[1])


def _failed(task: asyncio.Task[str]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)


async def _open_control(layer: Any) -> str:
    channel = await layer.new_channel("replies.")
    listener = asyncio.create_task(_listen(layer, channel), name=f"control {channel}")
    _control_listeners.add(listener)
    listener.add_done_callback(_control_listeners.discard)
    return channel


async def _listen(layer: Any, channel: str) -> None:
    """Answer stop and catch-up requests for the replies this process runs, until cancelled."""
    while True:
        try:
            message = await layer.receive(channel)
            await _answer(layer, message)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A failing layer loses stop and catch-up for a moment, never the replies.
            logger.exception("the replies' control channel failed; listening again")
            await asyncio.sleep(1)


async def _answer(layer: Any, message: dict[str, Any]) -> None:
    kind = message.get("type")
    runner = _running.get(message.get("reply_id"))
    if runner is None:
        if kind == "reply.stop" and isinstance(message.get("reply_id"), int):
            _remember_stop(message["reply_id"])  # stored, about to start
        return  # or it ended meanwhile: its end reaches every tab through the group
    if kind == "reply.stop":
        runner.stop()
    elif kind == "reply.sync" and message.get("reply_to"):
        snapshot = {"type": "reply.snapshot", "frame": runner.snapshot()}
        await layer.send(message["reply_to"], snapshot)


async def close_control() -> None:
    """Stop listening on this process's control channel (tests, the terminal chat's end).

    The listener's cancelled receive unsubscribes the channel.
    """
    loop = asyncio.get_running_loop()
    _controls.pop(loop, None)
    for listener in [task for task in _control_listeners if task.get_loop() is loop]:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


PrepareFn = Callable[..., Any]


async def start(prepare: PrepareFn, **kwargs: Any) -> Any:
    """Prepare a reply with a `services` function, announce it and stream it in the background.

    Returns what `prepare` returned. A replayed frame (known client id) starts nothing. A
    message sent goes through `post` instead: it is stored together with those of other
    sockets sending at the same moment.
    """
    channel = await control_channel()
    prepared = await database.in_database(prepare)(runner_channel=channel, **kwargs)
    if prepared.is_new:
        await _launch(prepared, translation.get_language())
    return prepared


def _launch(prepared: services.PreparedReply, language: str | None) -> asyncio.Task[None]:
    """Start streaming a stored reply; the task that announces it is returned."""
    # The model is asked first: the announcements overlap with its first token. Sockets
    # order what they forward, so a delta never reaches a client before its reply.
    ReplyRunner(prepared).start(language)
    with translation.override(language):
        return asyncio.create_task(_announce(prepared))


def announcement(prepared: services.PreparedReply) -> list[dict[str, Any]]:
    """The frames that tell a conversation's tabs what a reply's start changed. A continued
    reply announces itself, from its runner (`ReplyRunner.restart`)."""
    frames: list[dict[str, Any]] = [
        {"type": "message.created", "message": message_payload(m)} for m in prepared.created
    ]
    if prepared.titled or prepared.unarchived:
        frames.append(conversation_frame(prepared.conversation))
    return frames


async def _announce(prepared: services.PreparedReply) -> None:
    """Tell the conversation's sockets what the reply's start created, in one group message,
    and every tab of its owner what it changed of the conversation (its first title, its
    return from the archive): each tab's sidebar lists it, whichever conversation it shows.

    A failing (or overwhelmed) layer costs the other processes' tabs the news until they
    catch up, never the reply nor the message that started it: the tabs of this process,
    the asking socket among them, have it before the layer is tried (`send_frames`).
    """
    frames = announcement(prepared)
    created = [frame for frame in frames if frame["type"] == "message.created"]
    changed = [frame for frame in frames if frame["type"] == "conversation.updated"]
    try:
        if created:
            await send_to_group(prepared.conversation.pk, *created)
        if changed:
            await send_frames(user_group(prepared.conversation.user_id), *changed)
    except Exception as exc:
        logger.warning("announcing reply %s failed (%r); it goes on", prepared.reply.pk, exc)


# Group commit: the messages sent while the batches being stored are busy wait for them, then
# go together in the next one: one transaction, and the same few statements whatever their
# number (`services.post_messages`). A message sent alone is stored at once. Each process
# (event loop) has one queue, stored one batch after another on the process's database thread;
# with `CHAT_DATABASE_THREADS` on PostgreSQL a few batches are stored at once, each on a pooled
# connection of its own (their locks are taken in one order, so they cannot deadlock).
POST_BATCH_MAX = 50
POST_BATCH_WORKERS = 4
# A worker's database thread takes the next batch itself as soon as it has stored one, for up
# to this long: it does not wait for the busy event loop in between (at a burst of messages
# that wait was longer than the storing). Then it makes room for other database work.
POST_TRIP_SECONDS = 0.25
Posted = tuple[services.PreparedReply, "asyncio.Task[None] | None"]
Waiting = tuple[services.Post, "asyncio.Future[Posted]"]


@dataclass
class _Worker:
    """A worker's place among the busy ones. Its database thread gives it up in the same step
    as its last look at the queue, so a post queued from then on starts a worker at once
    instead of waiting for the busy event loop to hear the worker has left; the loop gives it
    up when the thread failed. Whichever comes first counts, once."""

    released: bool = False


class PostQueue:
    """The messages of one process waiting to be stored, and the workers storing them.

    The queue is shared by the event loop, which adds to it, and the workers' database
    threads, which take from it: under a lock.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting: list[Waiting] = []
        # Workers still storing: one that has found the queue empty no longer counts, in the
        # same step as that last look, so a post queued from then on starts a worker of its own.
        self.busy = 0
        self.workers: set[asyncio.Task[None]] = set()  # asyncio keeps only weak references
        self.most_workers = POST_BATCH_WORKERS if database.side_by_side() else 1

    def put(self, post: services.Post) -> asyncio.Future[Posted]:
        """Queue a post; its future gets the stored reply and the task announcing it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Posted] = loop.create_future()
        with self.lock:
            self.waiting.append((post, future))
            start_worker = self.busy < self.most_workers
            if start_worker:
                self.busy += 1
        if start_worker:
            worker = loop.create_task(self._work(), context=contextvars.Context())
            self.workers.add(worker)
            worker.add_done_callback(self.workers.discard)
        return future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        worker = _Worker()
        try:
            while await database.in_database(self._store)(loop, worker):
                pass
        except Exception as exc:
            # Not a refused or failed post (those are answered one by one): the database
            # thread itself failed. The posts still waiting get the error rather than a
            # worker that will never come.
            logger.exception("storing the sent messages failed")
            with self.lock:
                failed, self.waiting = self.waiting, []
            for _post, future in failed:
                if not future.done():
                    future.set_exception(exc)
        finally:
            self._release(worker)

    def _release(self, worker: _Worker) -> None:
        with self.lock:
            self._release_locked(worker)

    def _release_locked(self, worker: _Worker) -> None:
        """The worker no longer counts: it found the queue empty, or it failed."""
        if not worker.released:
            worker.released = True
            self.busy -= 1

    def _store(self, loop: asyncio.AbstractEventLoop, worker: _Worker) -> bool:
        """Store batches in a row, in a database thread; whether the worker goes on."""
        until = time.monotonic() + POST_TRIP_SECONDS
        while True:
            with self.lock:
                batch = self.waiting[:POST_BATCH_MAX]
                del self.waiting[:POST_BATCH_MAX]
                if not batch:
                    self._release_locked(worker)
                    return False
            results: list[services.PreparedReply | Exception]
            try:
                results = services.post_messages([post for post, _ in batch])
            except Exception as exc:
                results = [exc] * len(batch)
            loop.call_soon_threadsafe(_deliver, batch, results, context=contextvars.Context())
            if time.monotonic() >= until:
                return True


# This process's (event loop's) queue of messages to store.
post_queue = one_per_loop(PostQueue)


async def post(
    *,
    user: Any,
    conversation_id: Any,
    content: str,
    client_id: str,
    attachments: tuple[int, ...] = (),
) -> services.PreparedReply:
    """Store a sent message and its reply's row, then stream the reply in the background.

    Raises the `ChatError` that refused the message. Once stored, the reply streams even if
    the caller is gone (its socket closed) by then.
    """
    channel = await control_channel()
    language = translation.get_language()
    post = services.Post(
        user, conversation_id, content, client_id, channel, language, tuple(attachments)
    )
    if not settings.CHAT_GROUP_COMMIT:  # each message in a trip and a transaction of its own
        prepared = await database.in_database(services.post_messages)([post])
        result = prepared[0]
        if isinstance(result, Exception):
            raise result
        if result.is_new:
            await _launch(result, language)
        return result
    prepared, announcing = await post_queue().put(post)
    if announcing is not None:
        await asyncio.shield(announcing)
    return prepared


def _deliver(batch: list[Waiting], results: list[services.PreparedReply | Exception]) -> None:
    """On the event loop: start the stored replies, answer each post of a stored batch."""
    for (post, future), result in zip(batch, results, strict=True):
        if isinstance(result, Exception):
            if not future.done():
                future.set_exception(result)
            continue
        announcing = _launch(result, post.language) if result.is_new else None
        if not future.done():
            future.set_result((result, announcing))


async def request_stop(reply: Message) -> None:
    """Ask the runner of a reply, in whatever process, to stop it."""
    if reply.runner_channel:
        try:
            await get_channel_layer().send(
                reply.runner_channel, {"type": "reply.stop", "reply_id": reply.pk}
            )
        except Exception as exc:
            logger.warning("asking reply %s to stop failed (%r)", reply.pk, exc)
            raise ChatError(
                "unavailable", _("The answer could not be reached to stop it. Try again.")
            ) from None


async def request_sync(reply: Message, reply_to: str) -> None:
    """Ask the runner of a reply for its text so far, to be sent to channel `reply_to`.

    A failing layer loses the request: the socket falls back to the saved text."""
    if reply.runner_channel:
        try:
            await get_channel_layer().send(
                reply.runner_channel,
                {"type": "reply.sync", "reply_id": reply.pk, "reply_to": reply_to},
            )
        except Exception as exc:
            logger.warning("asking reply %s for its text failed (%r)", reply.pk, exc)
