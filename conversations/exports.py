"""Conversations out and in: Markdown and JSON exports, and the checks an import must pass.

An export is a JSON document of one or more conversations (the chat's *Download as JSON*, the
admin's action for several). An import reads such a document back. Nothing in the file decides
whose account it lands in (`imports.import_conversations` always writes into the importing
user's), nor what the admin controls: the model and the token limit are the persona's, and the
usage a file records counts in no figure here. Every check runs before anything is written, so
a file that fails any of them stores nothing, and the person is told what is wrong in a
sentence that names the place in the file.

The Markdown export is read in previewers that render HTML: what a model, a user or a file
wrote reaches it as text (`_inert`), and a title is one line, so it cannot make up a turn.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import number_format
from django.utils.text import slugify
from django.utils.translation import gettext as _
from markdown_it import MarkdownIt

from . import confidence, foreign, usage
from .models import Attachment, Conversation, Message, Persona, Rating, Role, Status
from .protocol import iso_time
from .rendering import json_check, pretty_json
from .tree import Tree

FORMAT = "chatsite.conversations"
VERSION = 1
# Limits of one import file. A conversation the app itself made stays far below them; a file
# at all of them is stored in about a second (tests/hardening/test_import_does_not_stall_others).
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_CONVERSATIONS = 100
MAX_MESSAGES = 5000
# Messages of the whole file: what bounds the rows an import writes (5 MB of empty messages
# were 170,000 of them).
MAX_IMPORT_MESSAGES = 10_000
# A reply is empty when it failed before its first word; the app never stores an empty message
# of the user's. Many empty rows are cheap to send and cost as much to store as full ones.
MAX_EMPTY_REPLIES = 200
MAX_CONTENT_CHARS = foreign.MAX_CHARS
MAX_DEPTH = 40
# Settings a user may change in a conversation: these come from the file. The model and the
# token limit are the persona's (the admin's choice), whatever the file says.
USER_SETTINGS = ("system_prompt", "temperature", "response_format", "logprobs", "top_logprobs")


# Export.


def message_document(message: Message) -> dict[str, Any]:
    return {
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "finish_reason": message.finish_reason,
        "model": message.model,
        "error": message.error,
        "rating": message.rating,
        "edited": message.edited,
        "created_at": iso_time(message.created_at),
        "completed_at": iso_time(message.completed_at),
        "usage": {
            "prompt_tokens": message.prompt_tokens,
            "completion_tokens": message.completion_tokens,
        },
        "parameters": message.parameters,
        "logprobs": message.logprobs,
    }


def import_limit() -> int:
    """The largest import file: MAX_IMPORT_BYTES of conversations, and the attachments an
    export carries (CHAT_EXPORT_ATTACHMENT_BYTES, a third larger in base64)."""
    return MAX_IMPORT_BYTES + math.ceil(settings.CHAT_EXPORT_ATTACHMENT_BYTES / 3) * 4


def attachment_documents(conversation_ids: list[Any]) -> dict[int, list[dict[str, Any]]]:
    """The files of the conversations' messages, by message id: each with its bytes (base64)
    while the export's CHAT_EXPORT_ATTACHMENT_BYTES last, past them by name only (`data`
    null). One query."""
    budget = settings.CHAT_EXPORT_ATTACHMENT_BYTES
    documents: dict[int, list[dict[str, Any]]] = {}
    found = Attachment.objects.filter(conversation_id__in=conversation_ids).exclude(message=None)
    for attachment in found.order_by("id"):
        data = None
        if attachment.size <= budget:
            with attachment.file.open("rb") as source:
                data = base64.b64encode(source.read()).decode("ascii")
            budget -= attachment.size
        documents.setdefault(attachment.message_id, []).append(
            {
                "name": attachment.name,
                "kind": attachment.kind,
                "content_type": attachment.content_type,
                "size": attachment.size,
                "data": data,
            }
        )
    return documents


def conversation_document(
    conversation: Conversation,
    messages: Iterable[Message],
    files: dict[int, list[dict[str, Any]]] | None = None,
) -> dict:
    """The whole tree: every version of every message, oldest first, each naming its parent
    by its place in the list (`parent`, from 0; null for a first message) and when it was last
    chosen (`selected_at`), so an import shows the same path. A message with files carries
    them (`attachment_documents`)."""
    files = files or {}
    kept = sorted(
        (m for m in messages if m.role in (Role.USER, Role.ASSISTANT)), key=lambda m: m.pk
    )
    places = {m.pk: place for place, m in enumerate(kept)}
    return {
        "title": conversation.title,
        "persona": conversation.persona.name if conversation.persona else None,
        "pinned": conversation.pinned,
        "created_at": iso_time(conversation.created_at),
        "updated_at": iso_time(conversation.updated_at),
        "settings": conversation.settings_dict(),
        "messages": [
            {
                **message_document(m),
                "parent": places.get(m.parent_id),
                "selected_at": iso_time(m.selected_at),
                **({"attachments": files[m.pk]} if m.pk in files else {}),
            }
            for m in kept
        ],
    }


def active_path(messages: Iterable[Message]) -> list[Message]:
    """Of a conversation's messages (all of them, loaded), those of the path it shows."""
    messages = list(messages)
    by_id = {m.pk: m for m in messages}
    return [by_id[pk] for pk in Tree.of(messages).path()]


def export_document(conversations: Iterable[Conversation]) -> dict[str, Any]:
    """One document for any number of conversations; messages come prefetched or are read."""
    conversations = list(conversations)
    files = attachment_documents([c.pk for c in conversations])
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": iso_time(timezone.now()),
        "conversations": [
            conversation_document(c, sorted(c.messages.all(), key=lambda m: m.pk), files)
            for c in conversations
        ],
    }


def export_json(conversations: Iterable[Conversation]) -> bytes:
    text = json.dumps(export_document(conversations), ensure_ascii=False, indent=2)
    return text.encode("utf-8")


def filename(conversation: Conversation | None, extension: str) -> str:
    stem = slugify(conversation.title, allow_unicode=True)[:60] if conversation else ""
    day = timezone.localdate().isoformat()
    return f"{stem or 'conversation'}-{day}.{extension}"


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`, so it cannot end early."""
    longest = 0
    run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _when(value: datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


# CommonMark with raw HTML on, as the previewers that read an export parse it.
_commonmark = MarkdownIt("commonmark")
# A `<` that can start HTML or an autolink: a tag, a closing tag, a comment, a declaration, a
# processing instruction, a URL. `a < b` starts none and is left alone.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_BACKTICKS = re.compile(r"`+")


def _escape(text: str) -> str:
    return _TAG_START.sub("&lt;", text)


def _line(text: str) -> str:
    """Text for one line of the export (a title, a name, an error): its line breaks would
    start headings or turns of their own."""
    return _escape(" ".join(text.split()))


def _escape_outside_code_spans(line: str) -> str:
    """`_escape` except inside `code spans` of the line, which show `<` as written."""
    parts, position = [], 0
    runs = list(_BACKTICKS.finditer(line))
    opener = 0
    while opener < len(runs):
        run = runs[opener]
        closer = next(
            (i for i in range(opener + 1, len(runs)) if len(runs[i].group()) == len(run.group())),
            None,
        )
        if closer is None:
            opener += 1
            continue
        parts += [_escape(line[position : run.start()]), line[run.start() : runs[closer].end()]]
        position = runs[closer].end()
        opener = closer + 1
    parts.append(_escape(line[position:]))
    return "".join(parts)


@dataclass
class _Blocks:
    """What a parse of Markdown says about its code: the lines of its code blocks, the fence
    left open at the end (if any), and the `<` that could start a tag outside code blocks and
    inside code spans."""

    code: set[int]
    unclosed: str
    tags_outside_blocks: int
    tags_in_spans: int


def _closes(lines: list[str], start: int, end: int, markup: str) -> bool:
    """Whether a fence's last line closes it: its character, as many times or more, alone."""
    last = lines[end - 1]
    mark = last.strip()
    return (
        end - start >= 2
        and len(last) - len(last.lstrip(" ")) < 4
        and len(mark) >= len(markup)
        and set(mark) == {markup[0]}
    )


def _blocks(markdown: str) -> _Blocks:
    lines = markdown.split("\n")
    blocks = _Blocks(set(), "", 0, 0)
    for token in _commonmark.parse(markdown):
        if token.type in ("fence", "code_block") and token.map:
            start, end = token.map
            blocks.code.update(range(start, end))
            if token.type == "fence" and token.level == 0:
                blocks.unclosed = "" if _closes(lines, start, end, token.markup) else token.markup
        for child in token.children or ():
            if child.type == "code_inline":
                blocks.tags_in_spans += len(_TAG_START.findall(child.content))
    blocks.tags_outside_blocks = sum(
        len(_TAG_START.findall(line)) for i, line in enumerate(lines) if i not in blocks.code
    )
    return blocks


def _inert(text: str) -> str:
    """Markdown as written, except that nothing in it is raw HTML any more.

    Outside code, a `<` that could start a tag becomes `&lt;`: a previewer shows it and starts
    no tag. Code blocks keep theirs (HTML means nothing there, and `&lt;` would be shown as
    written). Code spans keep theirs too when a parse of the result confirms that every `<`
    left is inside one; otherwise they are escaped as well. A code block left open is closed,
    or it would run on into the next turn and end inside another message.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "<" not in text and "```" not in text and "~~~" not in text:
        return text
    # Escaped everywhere it holds no HTML, and escaping inside code blocks changes no block:
    # its code blocks are those of every text composed below.
    blocks = _blocks(_escape(text))
    closing = f"\n{blocks.unclosed}" if blocks.unclosed else ""
    lines = text.split("\n")

    def compose(escape_line: Any) -> str:
        kept = (line if i in blocks.code else escape_line(line) for i, line in enumerate(lines))
        return "\n".join(kept) + closing

    spans_kept = compose(_escape_outside_code_spans)
    check = _blocks(spans_kept)
    if not check.unclosed and check.tags_outside_blocks == check.tags_in_spans:
        return spans_kept
    return compose(_escape)


def _settings_line(conversation: Conversation) -> str:
    parts = [
        _line(conversation.effective_model),
        _("temperature %(value)s") % {"value": conversation.temperature},
    ]
    if conversation.max_completion_tokens:
        parts.append(_("max %(count)s tokens") % {"count": conversation.max_completion_tokens})
    if conversation.response_format == "json_object":
        parts.append(_("JSON mode"))
    if conversation.logprobs:
        parts.append(_("token confidence"))
    return ", ".join(parts)


def export_markdown(conversation: Conversation, messages: Iterable[Message]) -> str:
    """The conversation as a Markdown document a person reads: who said what, and how."""
    messages = [m for m in messages if m.role in (Role.USER, Role.ASSISTANT)]
    persona = conversation.persona
    assistant = _line(persona.display_name()) if persona else _("Assistant")
    emoji = f"{_line(persona.emoji)} " if persona and persona.emoji else ""
    # From the usage ledger, as every usage figure (`usage`): tokens an import recorded do not
    # count, and answers regenerated or edited away still do.
    totals = usage.conversation_totals(conversation)
    prompt, completion = totals.prompt_tokens, totals.completion_tokens
    title = _line(conversation.title) or _("New chat")
    tokens = _("%(total)s (%(prompt)s in · %(completion)s out)") % {
        "total": prompt + completion,
        "prompt": prompt,
        "completion": completion,
    }
    lines = [f"# {title}", ""]
    for label, value in (
        (_("Persona"), f"{emoji}{assistant}"),
        (_("Settings"), _settings_line(conversation)),
        (_("Created"), _when(conversation.created_at)),
        (_("Exported"), _when(timezone.now())),
        (_("Tokens"), tokens),
    ):
        lines.append(f"- {label}: {value}")
    if conversation.system_prompt:
        lines += ["", "**{}**".format(_("System prompt")), ""]
        prompt_lines = _inert(conversation.system_prompt).split("\n")
        lines += [f"> {line}" if line else ">" for line in prompt_lines]
    you = _("You")
    invalid_json = _("Not valid JSON: shown as the model wrote it.")
    files: dict[int, list[Attachment]] = {}
    for attachment in Attachment.objects.filter(message_id__in=[m.pk for m in messages]):
        files.setdefault(attachment.message_id, []).append(attachment)
    for message in messages:
        lines += ["", "---", ""]
        who = you if message.role == Role.USER else f"{emoji}{assistant}"
        heading = f"### {who} · {_when(message.created_at)}"
        if message.role == Role.ASSISTANT and message.status != Status.COMPLETE:
            heading += f" · {Status(message.status).label}"
        lines += [heading, ""]
        parameters = message.parameters or {}
        if message.role == Role.ASSISTANT and parameters.get("response_format") == "json_object":
            body = pretty_json(message.content) or message.content
            fence = _fence(body)
            lines += [f"{fence}json", body, fence]
            if json_check(message.content, parameters, message.status) == "invalid":
                lines += ["", f"*{invalid_json}*"]
        else:
            lines.append(_inert(message.content))
        if message.pk in files:
            lines += ["", "{}:".format(_("Attached files")), ""]
            lines += [
                f"- {_line(a.name)} ({a.get_kind_display()}, {filesizeformat(a.size)})"
                for a in files[message.pk]
            ]
        if message.error:
            lines += ["", f"*{_line(message.error)}*"]
        notes = []
        used_prompt, used_completion, _estimated = message.usage
        if used_prompt is not None or used_completion is not None:
            notes.append(
                _("%(prompt)s in · %(completion)s out tokens")
                % {"prompt": used_prompt or 0, "completion": used_completion or 0}
            )
        summary = confidence.summarize(message.logprobs)
        if summary is not None:
            notes.append(
                _("confidence: mean %(mean)s%%, lowest %(lowest)s%%")
                % {"mean": summary.mean_percent, "lowest": summary.lowest.percent}
            )
        if notes:
            lines += ["", f"<sub>{' · '.join(notes)}</sub>"]
    return "\n".join(lines) + "\n"


# Import.


class ImportRefused(Exception):
    """The file cannot be imported; `message` says why, for the person who sent it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class ImportedConversation:
    """A conversation from a file, checked and ready to be written for some user.

    `settings` are complete: the persona's model and token limit, and the file's choices of
    what a user may change in a conversation.
    """

    title: str
    persona: Persona | None
    pinned: bool
    created_at: datetime | None
    settings: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    # Its last activity (None: the file says none; it is then imported as active now).
    updated_at: datetime | None = None


def _refuse(where: str, problem: str) -> ImportRefused:
    return ImportRefused(
        _("This file cannot be imported: %(where)s %(problem)s")
        % {"where": where, "problem": problem}
    )


def _count(number: int) -> str:
    return number_format(number, force_grouping=True)


def _object(value: Any, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _refuse(where, _("must be a JSON object."))
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _refuse(where, _("has an unknown field “%(name)s”.") % {"name": unknown[0][:40]})
    missing = sorted(required - set(value))
    if missing:
        raise _refuse(where, _("lacks the field “%(name)s”.") % {"name": missing[0]})
    return value


def _string(value: Any, where: str, *, limit: int, blank: bool = True) -> str:
    if not isinstance(value, str):
        raise _refuse(where, _("must be text."))
    if len(value) > limit:
        raise _refuse(where, _("is longer than %(limit)d characters.") % {"limit": limit})
    if not blank and not value.strip():
        raise _refuse(where, _("must not be empty."))
    return value


def _optional_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 2**31 - 1:
        raise _refuse(where, _("must be a whole number of 0 or more, or null."))
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _refuse(where, _("must be a number."))
    return float(value)


def _moment(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is not None:
            if timezone.is_naive(parsed):
                parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
            # Stored in UTC: a moment that has no UTC time (year 1 east of Greenwich,
            # 9999-12-31 west of it) is no date either.
            parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        # Well formed, but no such moment: February 30th, 25 o'clock, an offset of 99 hours.
        parsed = None
    if parsed is None:
        raise _refuse(where, _("must be a date and time such as 2026-01-31T12:00:00Z, or null."))
    return parsed


def _logprobs(value: Any, where: str) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _refuse(where, _("must be a list or null."))
    checked = []
    for i, entry in enumerate(value):
        at = f"{where}[{i}]"
        entry = _object(entry, at, {"token", "logprob", "top_logprobs"}, {"token", "logprob"})
        alternatives = entry.get("top_logprobs") or []
        if not isinstance(alternatives, list):
            raise _refuse(f"{at}.top_logprobs", _("must be a list."))
        weighed = []
        for j, alternative in enumerate(alternatives):
            alt_at = f"{at}.top_logprobs[{j}]"
            alt = _object(alternative, alt_at, {"token", "logprob"}, {"token", "logprob"})
            weighed.append(
                {
                    "token": _string(alt["token"], f"{alt_at}.token", limit=1000),
                    "logprob": _number(alt["logprob"], f"{alt_at}.logprob"),
                }
            )
        checked.append(
            {
                "token": _string(entry["token"], f"{at}.token", limit=1000),
                "logprob": _number(entry["logprob"], f"{at}.logprob"),
                "top_logprobs": weighed,
            }
        )
    return checked


MESSAGE_FIELDS = {
    "role",
    "content",
    # The user's 👍 / 👎 on an answer, and whether they wrote it (absent from older exports).
    "rating",
    "edited",
    "status",
    "finish_reason",
    "model",
    "error",
    "created_at",
    "completed_at",
    "usage",
    "parameters",
    "logprobs",
    # The tree (absent from exports made before it: each message then follows the one before).
    "parent",
    "selected_at",
    # A user message's files (`attachment_documents`).
    "attachments",
}
ATTACHMENT_FIELDS = {"name", "kind", "content_type", "size", "data"}
# A message of a file with no `parent` key at all.
_NO_PARENT_GIVEN = object()


# Looked up once: a file holds thousands of messages, and Django's choices build a new list at
# every `.values` (it was a third of an import's checking).
_USER, _ASSISTANT = Role.USER.value, Role.ASSISTANT.value
_STATUSES = frozenset(Status.values)
_COMPLETE, _STREAMING, _INTERRUPTED = (
    Status.COMPLETE.value,
    Status.STREAMING.value,
    Status.INTERRUPTED.value,
)


def _message(value: Any, where: str, index: int) -> dict[str, Any]:
    if index % MAKE_WAY_EVERY == 0:
        _make_way()
    data = _object(value, where, MESSAGE_FIELDS, {"role", "content"})
    role = data["role"]
    if role not in (_USER, _ASSISTANT):
        raise _refuse(f"{where}.role", _("must be “user” or “assistant”."))
    status = data.get("status", _COMPLETE)
    if not isinstance(status, str) or status not in _STATUSES:
        raise _refuse(
            f"{where}.status",
            _("must be one of: %(choices)s.") % {"choices": ", ".join(Status.values)},
        )
    if status == _STREAMING:
        # No process is writing it here: it is what it was when the export was made.
        status = _INTERRUPTED
    if role == _USER and status != _COMPLETE:
        raise _refuse(f"{where}.status", _("must be “complete” for a user's message."))
    usage = _object(
        data.get("usage") or {}, f"{where}.usage", {"prompt_tokens", "completion_tokens"}, set()
    )
    parameters = data.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise _refuse(f"{where}.parameters", _("must be a JSON object or null."))
    created_at = _moment(data.get("created_at"), f"{where}.created_at")
    content = _string(
        data["content"],
        f"{where}.content",
        limit=MAX_CONTENT_CHARS,
        # The app never stores an empty message of the user's (sending one is refused).
        blank=role == _ASSISTANT,
    )
    return {
        "role": role,
        "content": content,
        "status": status,
        "finish_reason": _string(data.get("finish_reason", ""), f"{where}.finish_reason", limit=32),
        "model": _string(data.get("model", ""), f"{where}.model", limit=100),
        "error": _string(data.get("error", ""), f"{where}.error", limit=10_000),
        "rating": _rating(data.get("rating", ""), f"{where}.rating", role),
        "edited": _flag(data.get("edited", False), f"{where}.edited"),
        "created_at": created_at or timezone.now(),
        "completed_at": _moment(data.get("completed_at"), f"{where}.completed_at"),
        "prompt_tokens": _optional_int(usage.get("prompt_tokens"), f"{where}.usage.prompt_tokens"),
        "completion_tokens": _optional_int(
            usage.get("completion_tokens"), f"{where}.usage.completion_tokens"
        ),
        "parameters": parameters,
        "logprobs": _logprobs(data.get("logprobs"), f"{where}.logprobs"),
        "selected_at": _moment(data.get("selected_at"), f"{where}.selected_at")
        or created_at
        or timezone.now(),
        "parent_index": data.get("parent", _NO_PARENT_GIVEN),
        "attachments": _attachments(data.get("attachments"), f"{where}.attachments", role),
    }


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _refuse(where, _("must be true or false."))
    return value


def _rating(value: Any, where: str, role: str) -> str:
    if value == "" or (value in Rating.values and role == _ASSISTANT):
        return value
    raise _refuse(where, _("must be “good”, “bad” or empty (only an answer is rated)."))


def _attachments(value: Any, where: str, role: str) -> list[Any]:
    """A message's files, each checked again as an upload is (`attachments.check_upload`);
    those the export listed by name only (no `data`) are left out."""
    from .attachments import check_upload

    if value is None:
        return []
    if not isinstance(value, list) or role != _USER:
        raise _refuse(where, _("must be a list of files of a user's message."))
    if len(value) > settings.CHAT_ATTACHMENTS_PER_MESSAGE:
        raise _refuse(
            where,
            _("has more than %(limit)d files.") % {"limit": settings.CHAT_ATTACHMENTS_PER_MESSAGE},
        )
    checked = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        data = _object(item, at, ATTACHMENT_FIELDS, {"name"})
        name = _string(data["name"], f"{at}.name", limit=255)
        encoded = data.get("data")
        if encoded is None:
            continue
        if not isinstance(encoded, str):
            raise _refuse(f"{at}.data", _("must be base64 text or null."))
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise _refuse(f"{at}.data", _("must be base64 text or null.")) from None
        content_type = data.get("content_type")
        try:
            checked.append(
                check_upload(
                    name=name,
                    content_type=content_type if isinstance(content_type, str) else "",
                    data=content,
                    model=None,
                )
            )
        except ValidationError as error:
            raise _refuse(at, " ".join(error.messages)) from None
    return checked


def _link(messages: list[dict[str, Any]], where: str) -> None:
    """Each message's parent as its place in the list (`parent_index`). A file from before
    the tree names none: its messages are one path, each following the one before."""
    given = any(m["parent_index"] is not _NO_PARENT_GIVEN for m in messages)
    for index, message in enumerate(messages):
        parent = message["parent_index"]
        if not given:
            message["parent_index"] = index - 1 if index else None
        elif parent is _NO_PARENT_GIVEN or parent is None:
            message["parent_index"] = None
        elif not isinstance(parent, int) or isinstance(parent, bool) or not 0 <= parent < index:
            raise _refuse(
                f"{where}[{index}].parent",
                _("must be the place of an earlier message in this list (from 0), or null."),
            )


SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "system_prompt": (str,),
    "model": (str,),
    "temperature": (int, float),
    "max_completion_tokens": (int, type(None)),
    "response_format": (str,),
    "logprobs": (bool,),
    "top_logprobs": (int,),
}


def _validate(candidate: Conversation, where: str) -> None:
    """The model's own rules (temperature 0–2, the system prompt's length, JSON mode, …), as
    for a conversation made here; the first one broken is refused."""
    try:
        candidate.full_clean(
            exclude=["user", "persona", "title"], validate_unique=False, validate_constraints=False
        )
    except ValidationError as exc:
        name, errors = next(iter(exc.message_dict.items()))
        place = f"{where}.{name}:" if name in Conversation.SETTING_FIELDS else f"{where}:"
        raise _refuse(place, errors[0]) from None


def _settings(value: Any, where: str, base: Persona | None) -> dict[str, Any]:
    """The conversation's settings: `base`'s (the persona's, or the default persona's), with
    the file's choices of what a user may change.

    The file's model and token limit are checked, so a broken file is refused as a whole, and
    then dropped: they are the admin's to choose.
    """
    data = _object(value, where, set(Conversation.SETTING_FIELDS), set())
    for name, item in data.items():
        kinds = SETTING_TYPES[name]
        if (isinstance(item, bool) and bool not in kinds) or not isinstance(item, kinds):
            raise _refuse(f"{where}.{name}", _("has the wrong type."))
    _validate(Conversation(**data), where)
    settings = base.settings_dict() if base else {}
    settings.update({name: data[name] for name in USER_SETTINGS if name in data})
    candidate = Conversation(**settings)
    _validate(candidate, where)
    return candidate.settings_dict()


CONVERSATION_FIELDS = {
    "title",
    "persona",
    "pinned",
    "created_at",
    "updated_at",
    "settings",
    "messages",
}


def _conversation(
    value: Any, where: str, personas: dict[str, Persona], default: Persona | None
) -> ImportedConversation:
    data = _object(value, where, CONVERSATION_FIELDS, {"messages"})
    messages = data["messages"]
    if not isinstance(messages, list):
        raise _refuse(f"{where}.messages", _("must be a list."))
    persona_name = data.get("persona")
    if persona_name is not None:
        _string(persona_name, f"{where}.persona", limit=80)
    # An active persona of that name on this server, if there is one.
    persona = personas.get(persona_name) if persona_name else None
    pinned = _flag(data.get("pinned", False), f"{where}.pinned")
    parsed = [_message(m, f"{where}.messages[{i}]", i) for i, m in enumerate(messages)]
    _link(parsed, f"{where}.messages")
    return ImportedConversation(
        title=_string(data.get("title", ""), f"{where}.title", limit=200),
        persona=persona,
        pinned=pinned,
        created_at=_moment(data.get("created_at"), f"{where}.created_at"),
        updated_at=_moment(data.get("updated_at"), f"{where}.updated_at"),
        settings=_settings(data.get("settings") or {}, f"{where}.settings", persona or default),
        messages=parsed,
    )


# Checking a file is pure Python, about 0.2 s of it at the caps. Held in one go, every other
# thread of the process (the event loop serving everyone's sockets among them) waits up to the
# interpreter's switch interval (5 ms) each time it needs to run, and other users' replies took
# 3 to 5 times as long. Every few dozen messages the check lets them go first.
MAKE_WAY_EVERY = 50


def _make_way() -> None:
    time.sleep(0)


# What no database column holds: NUL (PostgreSQL refuses it in text and in JSON) and the
# halves of a surrogate pair without their other half (no UTF-8 encodes them). JSON's `\u`
# escapes write both.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# The largest whole number a column or a JSON value here holds (a 64-bit integer).
LARGEST_INTEGER = 2**63 - 1

Place = tuple["Place | None", str | int] | None


def _place(place: Place) -> str:
    """ "conversations[0].messages[3].content" from the keys on the way to a value."""
    keys: list[str | int] = []
    while place is not None:
        place, key = place
        keys.append(key)
    written = ""
    for key in reversed(keys):
        written += f"[{key}]" if isinstance(key, int) else f".{key}" if written else key
    return written or _("the file")


def _scan(document: Any) -> None:
    """Walk the whole document (without recursion): how deeply it nests, and whether every text
    and number in it, field names included, can be stored. Quickly first; only a file with a
    problem is walked again to say where it is."""
    if not _storable(document):
        _locate(document)


def _storable(document: dict[str, Any]) -> bool:
    stack = [(document, 0)]
    walked = 0
    while stack:
        container, depth = stack.pop()
        walked += 1
        if walked % MAKE_WAY_EVERY == 0:
            _make_way()
        if depth >= MAX_DEPTH:
            return False
        if type(container) is dict:
            if any(_UNSTORABLE.search(key) for key in container):
                return False
            items: Iterable[Any] = container.values()
        else:
            items = container
        for item in items:
            kind = type(item)
            if kind is str:
                if _UNSTORABLE.search(item):
                    return False
            elif kind is dict or kind is list:
                stack.append((item, depth + 1))
            elif kind is float:
                if not math.isfinite(item):
                    return False
            elif kind is int and not -LARGEST_INTEGER <= item <= LARGEST_INTEGER:
                return False
    return True


def _locate(document: Any) -> None:
    """Raise `ImportRefused` for the first value `_storable` objects to, with its place."""
    unstorable = _(
        "holds text that cannot be stored (a NUL character or half of a surrogate pair)."
    )
    stack: list[tuple[Any, int, Place]] = [(document, 0, None)]
    while stack:
        value, depth, place = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                raise _refuse(_place(place), unstorable)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise _refuse(_place(place), _("is a number too large to store."))
        elif isinstance(value, int):
            if abs(value) > LARGEST_INTEGER:
                raise _refuse(_place(place), _("is a number too large to store."))
        elif depth >= MAX_DEPTH:
            raise ImportRefused(_("This file cannot be imported: it nests too deeply."))
        elif isinstance(value, dict):
            for key, child in value.items():
                if _UNSTORABLE.search(key):
                    raise _refuse(_place(place), unstorable)
                stack.append((child, depth + 1, (place, key)))
        else:
            stack.extend((child, depth + 1, (place, i)) for i, child in enumerate(value))


def _count_messages(conversations: list[Any]) -> None:
    """Refuse a file by its number of messages, before any of them is checked one by one."""
    total = 0
    for i, conversation in enumerate(conversations):
        messages = conversation.get("messages") if isinstance(conversation, dict) else None
        if not isinstance(messages, list):
            continue  # `_conversation` says what is wrong with it
        if len(messages) > MAX_MESSAGES:
            raise _refuse(
                f"conversations[{i}].messages",
                _("has more than %(limit)s messages.") % {"limit": _count(MAX_MESSAGES)},
            )
        total += len(messages)
    if total > MAX_IMPORT_MESSAGES:
        raise ImportRefused(
            _("This file cannot be imported: it has more than %(limit)s messages.")
            % {"limit": _count(MAX_IMPORT_MESSAGES)}
        )


def parse_import(data: bytes) -> list[ImportedConversation]:
    """Check a whole export file; raise `ImportRefused` with the first problem found."""
    return read_import(data)[0]


def read_import(data: bytes) -> tuple[list[ImportedConversation], int]:
    """Check a whole export file, this app's or ChatGPT's or Open WebUI's (`foreign`): its
    conversations, and how many of a foreign file's were left out (over the limits of one
    import, the oldest). Raise `ImportRefused` with the first problem found."""
    if len(data) > import_limit():
        raise ImportRefused(too_large_message(len(data)))
    limits = foreign.Limits(
        file_bytes=import_limit(),
        conversations=MAX_CONVERSATIONS,
        messages=MAX_IMPORT_MESSAGES,
        per_conversation=MAX_MESSAGES,
    )
    wording = foreign.Wording(
        image=_("[an image, not imported]"),
        cut=_("[cut: the rest is longer than a message here can be]"),
    )
    try:
        found = foreign.read(data, limits, wording, ours=FORMAT, make_way=_make_way)
    except foreign.NotReadable as problem:
        raise ImportRefused(_unreadable(problem)) from None
    document, left_out = found.document, found.left_out
    if found.kind == "foreign":
        if not document and not left_out:
            raise ImportRefused(
                _("This file cannot be imported: it holds no conversation with a message.")
            )
        document = {"format": FORMAT, "version": VERSION, "conversations": document}
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ImportRefused(
            _(
                "This file cannot be imported: it is not a conversation export of this app, "
                "of ChatGPT or of Open WebUI. Choose a file made with “Download as JSON”, "
                "ChatGPT's data export or Open WebUI's “Export chats”."
            )
        )
    if document.get("version") != VERSION:
        raise ImportRefused(
            _(
                "This file cannot be imported: export version %(version)s is not supported "
                "(only %(supported)s)."
            )
            % {"version": str(document.get("version"))[:20], "supported": VERSION}
        )
    _object(
        document,
        _("the file"),
        {"format", "version", "exported_at", "conversations"},
        {"conversations"},
    )
    conversations = document["conversations"]
    if not isinstance(conversations, list) or not conversations:
        raise _refuse("“conversations”", _("must be a list of at least one conversation."))
    if len(conversations) > MAX_CONVERSATIONS:
        raise _refuse(
            "“conversations”",
            _("has more than %(limit)d conversations.") % {"limit": MAX_CONVERSATIONS},
        )
    _count_messages(conversations)
    _scan(document)
    personas = {p.name: p for p in Persona.objects.active()}
    default = Persona.objects.default()
    checked = [
        _conversation(c, f"conversations[{i}]", personas, default)
        for i, c in enumerate(conversations)
    ]
    empty = sum(
        1
        for c in checked
        for m in c.messages
        if m["role"] == _ASSISTANT and not m["content"].strip()
    )
    if empty > MAX_EMPTY_REPLIES:
        raise ImportRefused(
            _("This file cannot be imported: it has more than %(limit)s empty replies.")
            % {"limit": _count(MAX_EMPTY_REPLIES)}
        )
    return checked, left_out


def _unreadable(problem: foreign.NotReadable) -> str:
    if problem.code == "not_json":
        return _(
            "This file cannot be imported: it is not JSON. Choose a file made with "
            "“Download as JSON”, or ChatGPT's or Open WebUI's export."
        )
    reasons = {
        "no_conversations": _(
            "This zip file holds no conversations.json (ChatGPT's data export does)."
        ),
        "bad_zip": _("This zip file cannot be read."),
        "too_large": _(
            "Its conversations.json is %(size).1f MB unpacked, the limit is %(limit).1f MB."
        )
        % {"size": problem.size / (1024 * 1024), "limit": import_limit() / (1024 * 1024)},
        "shape": _(
            "parts of it are not shaped as ChatGPT's or Open WebUI's exports are, and nothing "
            "was taken from it."
        ),
    }
    reason = reasons.get(problem.code, _("it could not be read (the server's log says why)."))
    return _("This file cannot be imported: %(problem)s") % {"problem": reason}


def too_large_message(size: int) -> str:
    return _("This file cannot be imported: it is %(size)s, the limit is %(limit)s.") % {
        "size": _megabytes(size),
        "limit": _megabytes(import_limit()),
    }


def _megabytes(size: int) -> str:
    return _("%(count).1f MB") % {"count": size / (1024 * 1024)}
