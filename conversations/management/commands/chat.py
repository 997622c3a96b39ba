"""The terminal chatbot: `python manage.py chat --user NAME [--persona NAME] [--conversation ID]`.

It talks through the same code as the browser: `services` stores the messages, `replies.start`
streams the reply as a task of this process, and the reply's events arrive on the
conversation's channel group, where this command listens with a channel of its own and prints
each delta as it comes. The conversation is in the same database, so the browser lists it (with
the default in-memory channel layer after a reload; with REDIS_URL live) and this command can
resume one begun in the browser.

Ctrl+C while a reply streams stops it (saved as `stopped`, what arrived kept); at the prompt it
only says how to leave. Ctrl+D or /quit leaves.

The terminal shows the conversation and the app's own sentences, never a log line: those go to
stderr from WARNING up, held while an answer is being printed (`TerminalLogs`), or, with
`--log-file`, all of them to that file.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import logging.handlers
import os
import re
import signal
import sys
import uuid
from collections.abc import Callable
from typing import Any, TextIO

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils.translation import gettext as _

from conversations import confidence, llm, replies, services
from conversations.errors import ChatError
from conversations.layers import close_channel, close_layer
from conversations.models import Conversation, Message, Persona, Role, Status
from conversations.protocol import ReplyOrder

# Control characters a model could use to rewrite the terminal (escape sequences, bells);
# line breaks and tabs stay.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
HISTORY_SHOWN = 20


def printable(text: str) -> str:
    return CONTROL.sub("", text)


def find_persona(name: str) -> Persona | None:
    """An active persona by its name or English name, ignoring case."""
    name = name.strip()
    return Persona.objects.active().filter(Q(name__iexact=name) | Q(name_en__iexact=name)).first()


def persona_names() -> str:
    return ", ".join(p.name_en or p.name for p in Persona.objects.active())


class LineReader:
    """Lines from stdin without blocking the event loop.

    On a terminal or a pipe the loop watches the descriptor (so Ctrl+C reaches the loop at any
    time); anything else (a regular file) is read in a thread. `None` means end of input.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.buffer = b""
        self.fd: int | None = None
        loop = asyncio.get_running_loop()
        try:
            fd = stream.fileno()
            loop.add_reader(fd, self._ready)
            self.fd = fd
        except (AttributeError, OSError, ValueError, PermissionError):
            self.fd = None

    def _ready(self) -> None:
        assert self.fd is not None
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if not data:
            if self.buffer:
                self.queue.put_nowait(self.buffer.decode("utf-8", "replace"))
                self.buffer = b""
            self.queue.put_nowait(None)
            self.close()
            return
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.queue.put_nowait(line.decode("utf-8", "replace").rstrip("\r"))

    async def readline(self) -> str | None:
        if self.fd is None and self.queue.empty():
            line = await asyncio.to_thread(self.stream.readline)
            return line.rstrip("\r\n") if line else None
        return await self.queue.get()

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.fd)
            self.fd = None


class TerminalLogs:
    """Where the log lines of a terminal chat go: never into the conversation on stdout.

    The settings send every line to stdout, which is the conversation here: a reply whose
    model server went away printed its WARNING and INFO lines in the middle of the answer.
    With a log file, every line the log level lets through goes there instead. Without one,
    WARNING and above go to stderr; while an answer is being printed they wait (at most
    `HELD` of them) and follow it, after the app's own sentence about it.
    """

    HELD = 100

    def __init__(self, log_file: str | None = None) -> None:
        root = logging.getLogger()
        formatter = next((h.formatter for h in root.handlers if h.formatter), None)
        for handler in list(root.handlers):
            root.removeHandler(handler)
        self.held: logging.handlers.MemoryHandler | None = None
        if log_file:
            handler: logging.Handler = logging.FileHandler(log_file, encoding="utf-8")
        else:
            stderr = logging.StreamHandler(sys.stderr)
            stderr.setFormatter(formatter)
            handler = self.held = logging.handlers.MemoryHandler(
                self.HELD, flushLevel=logging.NOTSET, target=stderr
            )
            handler.setLevel(logging.WARNING)
        handler.setFormatter(formatter)
        root.addHandler(handler)

    def hold(self) -> None:
        if self.held is not None:
            self.held.flushLevel = logging.CRITICAL + 1

    def release(self) -> None:
        if self.held is not None:
            self.held.flushLevel = logging.NOTSET
            self.held.flush()


class Frames:
    """What the terminal reads of the conversation: what this process sends it at once
    (`replies.listen`, as a socket of this process gets it), the rest from the channel layer,
    in the order they came."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()

    async def group_frames(self, frames: list[dict[str, Any]]) -> None:
        self.queue.put_nowait(frames)

    async def pump(self, layer: Any, channel: str) -> None:
        while True:
            event = await layer.receive(channel)
            if not replies.sent_here(event):
                self.queue.put_nowait(event.get("frames") or [event.get("frame") or {}])

    async def next(self) -> list[dict[str, Any]]:
        return await self.queue.get()


class TerminalChat:
    """One session in the terminal: the current persona, conversation and temperature."""

    def __init__(
        self,
        command: BaseCommand,
        *,
        user: Any,
        persona: Persona | None,
        conversation: Conversation | None,
        logs: TerminalLogs,
    ) -> None:
        self.command = command
        self.logs = logs
        self.out = command.stdout
        self.style = command.style
        self.user = user
        self.persona = persona if conversation is None else conversation.persona
        self.conversation = conversation
        # Set by /temperature: used for this conversation and the new ones of this session.
        self.temperature: float | None = None
        self.reply: Message | None = None
        self.stopping: set[asyncio.Future[None]] = set()
        self.stop_wanted = False
        self.asking = False

    # Output.

    def write(self, text: str, style: Callable[[str], str] | None = None) -> None:
        self.out.write(printable(text), style_func=style, ending="")
        self.out.flush()

    def line(self, text: str = "", style: Callable[[str], str] | None = None) -> None:
        self.write(text + "\n", style)

    def assistant_name(self) -> str:
        if self.persona is None:
            return _("Assistant")
        return f"{self.persona.emoji} {self.persona.display_name()}".strip()

    def prompt(self) -> None:
        self.write(_("you") + "> ", self.style.SUCCESS)

    # The session.

    async def run(self, stdin: TextIO) -> None:
        loop = asyncio.get_running_loop()
        reader = LineReader(stdin)
        signals = True
        try:
            loop.add_signal_handler(signal.SIGINT, self.interrupt)
        except (NotImplementedError, RuntimeError):
            signals = False
        try:
            await self.greet()
            while True:
                self.prompt()
                text = await reader.readline()
                if text is None:
                    self.line()
                    self.line(_("Bye."))
                    return
                text = text.strip()
                if not text:
                    continue
                if text.startswith("/"):
                    if await self.command_line(text) == "quit":
                        self.line(_("Bye."))
                        return
                    continue
                await self.ask(replies.post, content=text)
        finally:
            reader.close()
            if signals:
                loop.remove_signal_handler(signal.SIGINT)
            await replies.wait_for_replies()
            await replies.close_control()
            await llm.close_client()
            await close_layer(get_channel_layer())

    async def greet(self) -> None:
        if self.conversation is None:
            self.line(
                _(
                    "Talking to %(persona)s. Type a message; /help lists the commands, "
                    "Ctrl+D leaves."
                )
                % {"persona": self.assistant_name()},
                self.style.NOTICE,
            )
            return
        history = await database_sync_to_async(self._history)()
        self.line(
            _("Resuming “%(title)s” with %(persona)s (%(count)d messages).")
            % {
                "title": str(self.conversation),
                "persona": self.assistant_name(),
                "count": history[0],
            },
            self.style.NOTICE,
        )
        for role, content in history[1]:
            who = _("you") if role == Role.USER else self.assistant_name()
            self.line(f"{who}> {content}", self.style.HTTP_NOT_MODIFIED)
        self.line(_("/help lists the commands, Ctrl+D leaves."), self.style.NOTICE)

    def _history(self) -> tuple[int, list[tuple[str, str]]]:
        """The active path (the versions chosen, in the browser too): its length, and its
        newest messages."""
        tree = Message.objects.tree(self.conversation.pk)
        path = [pk for pk in tree.path() if tree.nodes[pk].role in (Role.USER, Role.ASSISTANT)]
        shown = Message.objects.filter(pk__in=path[-HISTORY_SHOWN:]).order_by("id")
        return len(path), list(shown.values_list("role", "content"))

    def interrupt(self) -> None:
        """Ctrl+C: stop the reply being written, or, at the prompt, say how to leave."""
        if self.asking:
            self.stop_wanted = True
            self._stop_reply()
            return
        self.line()
        self.line(_("(Ctrl+D or /quit leaves.)"), self.style.NOTICE)
        self.prompt()

    def _stop_reply(self) -> None:
        """Ask for the reply's stop as a socket does: through its runner's control channel."""
        if self.reply is not None:
            stopping = asyncio.ensure_future(replies.request_stop(self.reply))
            self.stopping.add(stopping)
            stopping.add_done_callback(self.stopping.discard)

    # Commands.

    async def command_line(self, text: str) -> str | None:
        name, _sep, argument = text.partition(" ")
        name, argument = name.lower(), argument.strip()
        if name in ("/quit", "/exit", "/q"):
            return "quit"
        if name == "/new":
            self.conversation = None
            self.line(
                _("New conversation with %(persona)s.") % {"persona": self.assistant_name()},
                self.style.NOTICE,
            )
        elif name == "/persona":
            await self.switch_persona(argument)
        elif name == "/temperature":
            await self.set_temperature(argument)
        elif name == "/continue":
            if self.conversation is None:
                self.line(_("There is nothing to continue yet."), self.style.WARNING)
            else:
                await self.ask(functools.partial(replies.start, services.continue_reply))
        elif name == "/versions":
            await self.list_versions()
        elif name in ("/help", "/?"):
            self.help()
        else:
            self.line(
                _("Unknown command %(name)s. /help lists the commands.") % {"name": name},
                self.style.WARNING,
            )
        return None

    def help(self) -> None:
        for line in (
            _("/new                 start a new conversation with the same persona"),
            _("/persona NAME        talk to another persona, in a new conversation"),
            _("/temperature X       answer at temperature X (0 to 2) from now on"),
            _("/continue            ask for the rest of an answer cut off at the token limit"),
            _("/versions            list the versions of the last question and answer"),
            _("/quit or Ctrl+D      leave (the conversation stays, in the browser too)"),
            _("Ctrl+C               stop the answer being written"),
        ):
            self.line(line, self.style.NOTICE)

    async def list_versions(self) -> None:
        """The forks of the last exchange: every version of the last question and of its
        answer, the one shown marked (switch in the browser: `‹ 1 / 2 ›`)."""
        forks = (
            await database_sync_to_async(self._last_forks)()
            if self.conversation is not None
            else []
        )
        if not forks:
            self.line(_("The last question and answer have one version each."), self.style.NOTICE)
            return
        for role, versions in forks:
            who = _("you") if role == Role.USER else self.assistant_name()
            self.line(
                _("%(who)s: %(count)d versions") % {"who": who, "count": len(versions)},
                self.style.NOTICE,
            )
            for number, (content, shown) in enumerate(versions, 1):
                mark = "*" if shown else " "
                line = " ".join(content.split())
                self.line(f" {mark} {number}. {line[:70]}{'…' if len(line) > 70 else ''}")

    def _last_forks(self) -> list[tuple[str, list[tuple[str, bool]]]]:
        tree = Message.objects.tree(self.conversation.pk)
        path = tree.path()
        questions = [pk for pk in path if tree.nodes[pk].role == Role.USER]
        exchange = path[path.index(questions[-1]) :][:2] if questions else path[-1:]
        forks = [(pk, tree.siblings(pk)) for pk in exchange if len(tree.siblings(pk)) > 1]
        texts = Message.objects.in_bulk([s for _pk, siblings in forks for s in siblings])
        return [
            (tree.nodes[pk].role, [(texts[s].content, s == pk) for s in siblings])
            for pk, siblings in forks
        ]

    async def switch_persona(self, name: str) -> None:
        persona = await database_sync_to_async(find_persona)(name) if name else None
        if persona is None:
            names = await database_sync_to_async(persona_names)()
            self.line(
                _("No persona “%(name)s”. Choose one of: %(names)s.")
                % {"name": name, "names": names},
                self.style.WARNING,
            )
            return
        self.persona = persona
        self.conversation = None
        self.temperature = None
        self.line(
            _("Now talking to %(persona)s, in a new conversation.")
            % {"persona": self.assistant_name()},
            self.style.NOTICE,
        )

    async def set_temperature(self, argument: str) -> None:
        try:
            value = float(argument.replace(",", "."))
        except ValueError:
            value = -1.0
        if not 0 <= value <= 2:
            self.line(_("The temperature is a number from 0 to 2."), self.style.WARNING)
            return
        if self.conversation is not None:
            try:
                self.conversation = await database_sync_to_async(
                    services.update_conversation_settings
                )(
                    user=self.user,
                    conversation_id=self.conversation.pk,
                    values={"temperature": value},
                )
            except (ChatError, ValidationError) as exc:
                self.line(str(getattr(exc, "message", exc)), self.style.ERROR)
                return
        self.temperature = value
        self.line(
            _("Temperature %(value)s from the next answer on.") % {"value": f"{value:g}"},
            self.style.NOTICE,
        )

    # Asking.

    async def ensure_conversation(self) -> Conversation:
        if self.conversation is None:
            overrides = {"temperature": self.temperature} if self.temperature is not None else None
            self.conversation = await database_sync_to_async(services.start_conversation)(
                user=self.user, persona=self.persona, overrides=overrides
            )
            self.persona = self.conversation.persona
            self.line(
                _("(Conversation %(id)s: resume it with --conversation %(id)s.)")
                % {"id": self.conversation.pk},
                self.style.HTTP_NOT_MODIFIED,
            )
        return self.conversation

    async def ask(self, start: Callable[..., Any], **kwargs: Any) -> None:
        """Start a reply (`replies.post`, or `replies.start` with a `services` function) and
        print it as it streams."""
        conversation = await self.ensure_conversation()
        layer = get_channel_layer()
        group = replies.group_name(conversation.pk)
        # Listen before the reply starts, so its first delta cannot be missed.
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        frames = Frames()
        replies.listen(group, frames)
        pump = asyncio.create_task(frames.pump(layer, channel))
        self.asking, self.stop_wanted = True, False
        self.logs.hold()
        try:
            try:
                prepared = await start(
                    user=self.user,
                    conversation_id=conversation.pk,
                    client_id=uuid.uuid4().hex,
                    **kwargs,
                )
            except ChatError as exc:
                self.line(exc.message, self.style.ERROR)
                return
            self.reply = prepared.reply
            if self.stop_wanted:
                self._stop_reply()
            self.write(f"{self.assistant_name()}> ", self.style.MIGRATE_HEADING)
            if prepared.continued:  # the same answer goes on: its text so far, then the rest
                self.write(prepared.reply.content)
            ended = await self.follow(frames, prepared.reply)
            logprobs = await database_sync_to_async(
                Message.objects.filter(pk=prepared.reply.pk)
                .values_list("logprobs", flat=True)
                .first
            )()
            self.finish(ended, logprobs)
        finally:
            self.asking, self.reply = False, None
            self.logs.release()
            replies.stop_listening(group, frames)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            await layer.group_discard(group, channel)
            await close_channel(layer, channel)

    async def follow(self, frames: Frames, reply: Message) -> dict[str, Any]:
        """Print the reply as a socket shows it (deltas in `seq` order, a state as the text so
        far) until its `reply.ended`; return the message. A reply that goes on (Continue)
        starts from its text so far."""
        reply_id = reply.pk
        printed = reply.content
        order = ReplyOrder(seq=reply.seq)
        while True:
            for frame in await frames.next():
                kind = frame.get("type")
                if kind in ("reply.delta", "reply.state") and frame.get("reply_id") == reply_id:
                    ready = order.delta(frame) if kind == "reply.delta" else order.state(frame)
                    for item in ready:
                        text = item.get("content", printed + item.get("text", ""))
                        if text.startswith(printed):
                            self.write(text[len(printed) :])
                            printed = text
                elif kind == "reply.ended" and frame.get("message", {}).get("id") == reply_id:
                    message = frame["message"]
                    # Whatever the deltas did not bring (none should be missing) comes from the end.
                    if message["content"].startswith(printed):
                        self.write(message["content"][len(printed) :])
                    return message

    def finish(self, message: dict[str, Any], logprobs: list[dict[str, Any]] | None) -> None:
        self.line()
        status = message.get("status")
        notes = {
            Status.STOPPED: _("[stopped: what arrived is kept]"),
            Status.TRUNCATED: _("[cut off at the token limit: /continue asks for the rest]"),
            Status.FILTERED: _("[stopped by the model's content filter]"),
            Status.INTERRUPTED: _("[interrupted]"),
        }
        if status == Status.ERROR:
            self.line(
                _("[failed: %(error)s]") % {"error": message.get("error", "")}, self.style.ERROR
            )
        elif status in notes:
            self.line(notes[status], self.style.WARNING)
        details = []
        usage = message.get("usage") or {}
        if usage.get("prompt_tokens") is not None:
            details.append(
                (
                    _("≈ %(prompt)s in · %(completion)s out tokens (estimated)")
                    if usage.get("estimated")
                    else _("%(prompt)s in · %(completion)s out tokens")
                )
                % {
                    "prompt": usage["prompt_tokens"],
                    "completion": usage.get("completion_tokens") or 0,
                }
            )
        summary = confidence.summarize(logprobs)
        if summary is not None:
            details.append(
                _("confidence: mean %(mean)s%%, lowest %(lowest)s%%")
                % {"mean": summary.mean_percent, "lowest": summary.lowest.percent}
            )
        if details:
            self.line(f"({' · '.join(details)})", self.style.HTTP_NOT_MODIFIED)


class Command(BaseCommand):
    help = (
        "Chat in the terminal, in the same database as the browser: the answer streams as it "
        "is written, Ctrl+C stops it, Ctrl+D or /quit leaves."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--user", required=True, help="Username of the account to chat as.")
        parser.add_argument("--persona", help="Name (or English name) of the persona to talk to.")
        parser.add_argument(
            "--conversation", help="Id of a conversation of this user to resume (from the URL)."
        )
        parser.add_argument(
            "--log-file",
            help="Write the server's log lines to this file (from LOG_LEVEL up) instead of "
            "WARNING and above to stderr.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: options["user"]})
        except User.DoesNotExist:
            raise CommandError(f"No user “{options['user']}”.") from None
        if not user.is_active:
            raise CommandError(f"The account “{options['user']}” is disabled.")
        persona = None
        if options.get("persona"):
            persona = find_persona(options["persona"])
            if persona is None:
                raise CommandError(
                    f"No persona “{options['persona']}”. Choose one of: {persona_names()}."
                )
        conversation = None
        if options.get("conversation"):
            try:
                conversation = services.get_owned(
                    user=user, conversation_id=options["conversation"]
                )
            except ChatError:
                raise CommandError(
                    f"{options['user']} has no conversation {options['conversation']}."
                ) from None
            conversation = (
                Conversation.objects.select_related("persona").filter(pk=conversation.pk).get()
            )
        elif persona is None:
            persona = Persona.objects.default()
        logs = TerminalLogs(options.get("log_file"))
        session = TerminalChat(
            self, user=user, persona=persona, conversation=conversation, logs=logs
        )
        asyncio.run(session.run(sys.stdin))
