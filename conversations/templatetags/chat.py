"""Template helpers for the chat page: safe reply HTML, status notes, token confidence and the
strings the page's JavaScript shows (handed over with `json_script`)."""

from __future__ import annotations

import math
from typing import Any

from django import template
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from conversations.models import Message, Status
from conversations.rendering import render_reply

register = template.Library()


@register.filter
def reply_html(message: Message) -> SafeString:
    """The reply's markdown as sanitized HTML (see `conversations.rendering`)."""
    return mark_safe(render_reply(message.content, message.parameters))


def status_notes() -> dict[str, str]:
    return {
        Status.STOPPED: _("Stopped. What arrived is kept."),
        Status.TRUNCATED: _("Cut off at the token limit."),
        Status.FILTERED: _("Stopped by the model's content filter."),
        Status.ERROR: _("The answer failed."),
        Status.INTERRUPTED: _("Interrupted: the server stopped while writing this answer."),
    }


@register.simple_tag
def status_note(status: str) -> str:
    return status_notes().get(status, "")


def confidence_level(logprob: float) -> int:
    """1 (doubtful) to 4 (sure), from a token's log-probability."""
    probability = math.exp(logprob)
    if probability >= 0.9:
        return 4
    if probability >= 0.6:
        return 3
    if probability >= 0.3:
        return 2
    return 1


@register.simple_tag
def token_confidence(logprobs: list[dict[str, Any]] | None) -> SafeString:
    """Each token coloured by how sure the model was, its probability in a tooltip."""
    if not logprobs:
        return mark_safe("")

    def title(entry: dict[str, Any]) -> str:
        parts = [f"{math.exp(entry.get('logprob', 0.0)):.0%}"]
        for alt in entry.get("top_logprobs") or []:
            parts.append(f"{alt.get('token', '')!r} {math.exp(alt.get('logprob', 0.0)):.0%}")
        return " · ".join(parts)

    return format_html_join(
        "",
        '<span class="token conf-{}" title="{}">{}</span>',
        (
            (confidence_level(entry.get("logprob", 0.0)), title(entry), entry.get("token", ""))
            for entry in logprobs
        ),
    )


@register.simple_tag
def chat_strings() -> dict[str, Any]:
    """Every string the page's JavaScript shows, in the user's language."""
    return {
        "statusNotes": status_notes(),
        "connecting": _("Connecting…"),
        "reconnecting": _("Connection lost. Reconnecting…"),
        "reconnectingIn": _("Connection lost. Reconnecting in %(seconds)s s…"),
        "connected": _("Connected"),
        "notFound": _("This conversation does not exist any more."),
        "notAuthenticated": _("You are logged out. Log in again to chat."),
        "offlineKept": _(
            "You are offline. Your message stays here: send it when the connection is back."
        ),
        "copy": _("Copy"),
        "copied": _("Copied"),
        "copyCode": _("Copy code"),
        "retry": _("Retry"),
        "continue": _("Continue"),
        "edit": _("Edit"),
        "editMessage": _("Edit message"),
        "saveAndSend": _("Save and send"),
        "cancel": _("Cancel"),
        "parameters": _("Parameters"),
        "model": _("Model"),
        "temperature": _("Temperature"),
        "maxTokens": _("Max tokens"),
        "format": _("Format"),
        "formatText": _("Text"),
        "formatJson": _("JSON"),
        "tokenConfidence": _("Token confidence"),
        "on": _("on"),
        "off": _("off"),
        "noLimit": _("no limit"),
        "tokens": _("Tokens"),
        "tokensUsed": _("%(prompt)s in · %(completion)s out"),
        "answeredAt": _("Answered"),
        "excludedNote": _("Not sent with the latest answer: outside the model's context window."),
        "loadOlder": _("Load older messages"),
        "loading": _("Loading…"),
        "loadFailed": _("Could not load older messages."),
        "deleteConfirm": _("Delete “%(title)s”? This cannot be undone."),
        "newChat": _("New chat"),
        "assistantTyping": _("The assistant is writing…"),
        "answerDone": _("The answer is complete."),
    }
