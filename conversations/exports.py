"""Conversations out and in: Markdown and JSON exports, and the checks an import must pass.

An export is a JSON document of one or more conversations (the chat's *Download as JSON*, the
admin's action for several). An import reads such a document back. Nothing in the file decides
whose account it lands in: `services.import_conversations` always writes into the importing
user's. Every check runs before anything is written, so a file that fails any of them stores
nothing, and the person is told what is wrong in a sentence that names the place in the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify
from django.utils.translation import gettext as _

from . import confidence
from .models import Conversation, Message, Persona, Role, Status
from .protocol import iso_time
from .rendering import json_check, pretty_json

FORMAT = "chatsite.conversations"
VERSION = 1
# Limits of one import file. A conversation the app itself made stays far below them.
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_CONVERSATIONS = 100
MAX_MESSAGES = 5000
MAX_CONTENT_CHARS = 200_000
MAX_DEPTH = 40


# Export.


def message_document(message: Message) -> dict[str, Any]:
    return {
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "finish_reason": message.finish_reason,
        "model": message.model,
        "error": message.error,
        "created_at": iso_time(message.created_at),
        "completed_at": iso_time(message.completed_at),
        "usage": {
            "prompt_tokens": message.prompt_tokens,
            "completion_tokens": message.completion_tokens,
        },
        "parameters": message.parameters,
        "logprobs": message.logprobs,
    }


def conversation_document(conversation: Conversation, messages: Iterable[Message]) -> dict:
    return {
        "title": conversation.title,
        "persona": conversation.persona.name if conversation.persona else None,
        "pinned": conversation.pinned,
        "created_at": iso_time(conversation.created_at),
        "updated_at": iso_time(conversation.updated_at),
        "settings": conversation.settings_dict(),
        "messages": [
            message_document(m) for m in messages if m.role in (Role.USER, Role.ASSISTANT)
        ],
    }


def export_document(conversations: Iterable[Conversation]) -> dict[str, Any]:
    """One document for any number of conversations; messages come prefetched or are read."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": iso_time(timezone.now()),
        "conversations": [
            conversation_document(c, sorted(c.messages.all(), key=lambda m: m.pk))
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


def _settings_line(conversation: Conversation) -> str:
    parts = [
        conversation.effective_model,
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
    assistant = persona.display_name() if persona else _("Assistant")
    emoji = f"{persona.emoji} " if persona and persona.emoji else ""
    prompt = sum(m.prompt_tokens or 0 for m in messages)
    completion = sum(m.completion_tokens or 0 for m in messages)
    title = conversation.title or _("New chat")
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
        lines += [f"> {line}" if line else ">" for line in conversation.system_prompt.splitlines()]
    you = _("You")
    invalid_json = _("Not valid JSON: shown as the model wrote it.")
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
            lines.append(message.content)
        if message.error:
            lines += ["", f"*{message.error}*"]
        notes = []
        if message.prompt_tokens is not None or message.completion_tokens is not None:
            notes.append(
                _("%(prompt)s in · %(completion)s out tokens")
                % {
                    "prompt": message.prompt_tokens or 0,
                    "completion": message.completion_tokens or 0,
                }
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
    """A conversation from a file, checked and ready to be written for some user."""

    title: str
    persona: Persona | None
    pinned: bool
    created_at: datetime | None
    settings: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)


def _refuse(where: str, problem: str) -> ImportRefused:
    return ImportRefused(
        _("This file cannot be imported: %(where)s %(problem)s")
        % {"where": where, "problem": problem}
    )


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
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise _refuse(where, _("must be a date and time such as 2026-01-31T12:00:00Z, or null."))
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
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
    "status",
    "finish_reason",
    "model",
    "error",
    "created_at",
    "completed_at",
    "usage",
    "parameters",
    "logprobs",
}


def _message(value: Any, where: str) -> dict[str, Any]:
    data = _object(value, where, MESSAGE_FIELDS, {"role", "content"})
    role = data["role"]
    if role not in (Role.USER, Role.ASSISTANT):
        raise _refuse(f"{where}.role", _("must be “user” or “assistant”."))
    status = data.get("status", Status.COMPLETE)
    if status not in Status.values:
        raise _refuse(
            f"{where}.status",
            _("must be one of: %(choices)s.") % {"choices": ", ".join(Status.values)},
        )
    if status == Status.STREAMING:
        # No process is writing it here: it is what it was when the export was made.
        status = Status.INTERRUPTED
    if role == Role.USER and status != Status.COMPLETE:
        raise _refuse(f"{where}.status", _("must be “complete” for a user's message."))
    usage = _object(
        data.get("usage") or {}, f"{where}.usage", {"prompt_tokens", "completion_tokens"}, set()
    )
    parameters = data.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise _refuse(f"{where}.parameters", _("must be a JSON object or null."))
    created_at = _moment(data.get("created_at"), f"{where}.created_at")
    return {
        "role": role,
        "content": _string(data["content"], f"{where}.content", limit=MAX_CONTENT_CHARS),
        "status": status,
        "finish_reason": _string(data.get("finish_reason", ""), f"{where}.finish_reason", limit=32),
        "model": _string(data.get("model", ""), f"{where}.model", limit=100),
        "error": _string(data.get("error", ""), f"{where}.error", limit=10_000),
        "created_at": created_at or timezone.now(),
        "completed_at": _moment(data.get("completed_at"), f"{where}.completed_at"),
        "prompt_tokens": _optional_int(usage.get("prompt_tokens"), f"{where}.usage.prompt_tokens"),
        "completion_tokens": _optional_int(
            usage.get("completion_tokens"), f"{where}.usage.completion_tokens"
        ),
        "parameters": parameters,
        "logprobs": _logprobs(data.get("logprobs"), f"{where}.logprobs"),
    }


SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "system_prompt": (str,),
    "model": (str,),
    "temperature": (int, float),
    "max_completion_tokens": (int, type(None)),
    "response_format": (str,),
    "logprobs": (bool,),
    "top_logprobs": (int,),
}


def _settings(value: Any, where: str) -> dict[str, Any]:
    data = _object(value, where, set(Conversation.SETTING_FIELDS), set())
    settings: dict[str, Any] = {}
    for name, item in data.items():
        kinds = SETTING_TYPES[name]
        if (isinstance(item, bool) and bool not in kinds) or not isinstance(item, kinds):
            raise _refuse(f"{where}.{name}", _("has the wrong type."))
        settings[name] = item
    # The model's own rules (temperature 0–2, JSON mode, …), as for a conversation made here.
    candidate = Conversation(**settings)
    try:
        candidate.full_clean(exclude=["user", "persona", "title"])
    except ValidationError as exc:
        name, errors = next(iter(exc.message_dict.items()))
        place = f"{where}.{name}" if name in Conversation.SETTING_FIELDS else where
        raise _refuse(place, errors[0]) from None
    return {name: getattr(candidate, name) for name in Conversation.SETTING_FIELDS}


CONVERSATION_FIELDS = {
    "title",
    "persona",
    "pinned",
    "created_at",
    "updated_at",
    "settings",
    "messages",
}


def _conversation(value: Any, where: str, personas: dict[str, Persona]) -> ImportedConversation:
    data = _object(value, where, CONVERSATION_FIELDS, {"messages"})
    messages = data["messages"]
    if not isinstance(messages, list):
        raise _refuse(f"{where}.messages", _("must be a list."))
    if len(messages) > MAX_MESSAGES:
        raise _refuse(
            f"{where}.messages", _("has more than %(limit)d messages.") % {"limit": MAX_MESSAGES}
        )
    persona_name = data.get("persona")
    if persona_name is not None:
        _string(persona_name, f"{where}.persona", limit=80)
    pinned = data.get("pinned", False)
    if not isinstance(pinned, bool):
        raise _refuse(f"{where}.pinned", _("must be true or false."))
    return ImportedConversation(
        title=_string(data.get("title", ""), f"{where}.title", limit=200),
        # A persona of that name on this server, if there is one; the settings come along
        # either way, so the conversation goes on as it was.
        persona=personas.get(persona_name) if persona_name else None,
        pinned=pinned,
        created_at=_moment(data.get("created_at"), f"{where}.created_at"),
        settings=_settings(data.get("settings") or {}, f"{where}.settings"),
        messages=[_message(m, f"{where}.messages[{i}]") for i, m in enumerate(messages)],
    )


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply lists and objects nest, up to `limit` + 1 (checked without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_import(data: bytes) -> list[ImportedConversation]:
    """Check a whole export file; raise `ImportRefused` with the first problem found."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportRefused(too_large_message(len(data)))
    try:
        document = json.loads(data.decode("utf-8-sig"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ImportRefused(
            _(
                "This file cannot be imported: it is not JSON. Choose a file made with "
                "“Download as JSON”."
            )
        ) from None
    if _depth(document) > MAX_DEPTH:
        raise ImportRefused(_("This file cannot be imported: it nests too deeply."))
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ImportRefused(
            _(
                "This file cannot be imported: it is not a conversation export of this app. "
                "Choose a file made with “Download as JSON”."
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
    personas = {p.name: p for p in Persona.objects.all()}
    return [_conversation(c, f"conversations[{i}]", personas) for i, c in enumerate(conversations)]


def too_large_message(size: int) -> str:
    return _("This file cannot be imported: it is %(size)s, the limit is %(limit)s.") % {
        "size": _megabytes(size),
        "limit": _megabytes(MAX_IMPORT_BYTES),
    }


def _megabytes(size: int) -> str:
    return _("%(count).1f MB") % {"count": size / (1024 * 1024)}
