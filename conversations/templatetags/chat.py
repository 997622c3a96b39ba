"""Template helpers for the chat page: safe reply HTML, status notes, token confidence and the
strings the page's JavaScript shows (handed over with `json_script`)."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from conversations import confidence, services, usage
from conversations.models import Message, Status
from conversations.rendering import json_check, render_reply

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


@register.filter
def json_state(message: Message) -> str:
    """ "valid"/"invalid" for a JSON-mode reply that ended, "" otherwise."""
    return json_check(message.content, message.parameters, message.status)


def json_invalid_note() -> str:
    return _("Not valid JSON: shown as the model wrote it.")


@register.simple_tag
def json_note(message: Message) -> str:
    return json_invalid_note() if json_state(message) == "invalid" else ""


def _token_span(token: confidence.Token, tabindex: int, text: str | None = None) -> SafeString:
    """A token with its probability and alternatives for the tooltip (`confidence.js`).

    A chip shows the token made readable (`text`) and carries the token itself; a heatmap
    token is its own text.
    """
    alternatives = json.dumps(
        [[alt, round(p, 4)] for alt, p in token.alternatives], ensure_ascii=False
    )
    extra = format_html(' data-token="{}"', token.text) if text is not None else ""
    return format_html(
        '<span class="token conf-{}" tabindex="{}" data-p="{}" data-alts="{}"{}>{}</span>',
        token.level,
        tabindex,
        f"{token.probability:.4f}",
        alternatives,
        extra,
        token.text if text is None else text,
    )


@register.simple_tag
def token_heatmap(logprobs: list[dict[str, Any]] | None) -> SafeString:
    """The reply as tokens painted by confidence, hidden until its toggle shows it.

    One tab stop (the first token); the arrow keys move between tokens (`confidence.js`).
    """
    tokens = confidence.tokens_of(logprobs)
    if not tokens:
        return mark_safe("")
    # Each span is built by format_html, so the joined whole is safe.
    spans = mark_safe("".join(_token_span(t, 0 if i == 0 else -1) for i, t in enumerate(tokens)))
    return format_html(
        '<div class="heatmap" role="group" aria-label="{}" hidden>{}</div>',
        _("Token confidence heatmap. Arrow keys move between tokens."),
        spans,
    )


def confidence_summary_template() -> str:
    return _("Confidence: mean %(mean)s · lowest %(lowest)s · %(count)s tokens")


@register.inclusion_tag("conversations/_confidence.html")
def confidence_summary(logprobs: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Mean and lowest confidence and the least certain tokens, with the heatmap toggle."""
    summary = confidence.summarize(logprobs)
    if summary is None:
        return {"summary": None}
    text = confidence_summary_template() % {
        "mean": f"{summary.mean_percent}%",
        "lowest": f"{summary.lowest.percent}%",
        "count": summary.count,
    }
    chips = [
        (_token_span(token, 0, confidence.shown(token.text)), token.percent)
        for token in summary.least_certain
    ]
    return {"summary": summary, "text": text, "chips": chips}


@register.simple_tag
def reply_usage(message: Message) -> str:
    prompt, completion, estimated = message.usage
    if prompt is None and completion is None:
        return ""
    return usage_text(prompt or 0, completion or 0, estimated=estimated)


def usage_template(*, estimated: bool = False) -> str:
    if estimated:
        return _("≈ %(total)s tokens (%(prompt)s in · %(completion)s out)")
    return _("%(total)s tokens (%(prompt)s in · %(completion)s out)")


@register.simple_tag(name="usage_estimated_title")
def usage_estimated_note() -> str:
    return _("Estimated: the model's server reported no usage, so the app counted the tokens.")


def usage_text(prompt: int, completion: int, *, estimated: bool = False) -> str:
    return usage_template(estimated=estimated) % {
        "total": intcomma(prompt + completion),
        "prompt": intcomma(prompt),
        "completion": intcomma(completion),
    }


@register.inclusion_tag("conversations/_conversation_usage.html")
def conversation_usage(conversation: Any) -> dict[str, Any]:
    """Tokens the conversation's replies used so far: one query, however often it is shown."""
    totals = getattr(conversation, "_usage_totals", None)
    if totals is None:
        totals = conversation._usage_totals = usage.conversation_totals(conversation)
    estimated = totals.estimated > 0
    return {
        "prompt": totals.prompt_tokens,
        "completion": totals.completion_tokens,
        "estimated": totals.estimated,
        "last_reply_id": totals.last_reply_id or 0,
        "note": usage_estimated_note() if estimated else "",
        # A conversation with nothing counted yet shows nothing, not "0 tokens".
        "text": usage_text(totals.prompt_tokens, totals.completion_tokens, estimated=estimated)
        if totals.total
        else "",
    }


@register.inclusion_tag("conversations/_quota_left.html")
def quota_left(user: Any) -> dict[str, Any]:
    """What the user's quotas leave them today and this month, and when each resets: one
    query (`services.quota_state`); nothing is shown when no quota applies to them."""
    quota = services.quota_state(user)
    if not quota.limited:
        return {"lines": []}
    day_reset, month_reset = services.next_resets()
    lines = []
    if quota.per_day is not None:
        lines.append(
            _("Today: %(left)s of %(limit)s tokens left (resets at %(reset)s).")
            % {
                "left": intcomma(quota.left_today),
                "limit": intcomma(quota.per_day),
                "reset": services.reset_text(day_reset),
            }
        )
    if quota.per_month is not None:
        lines.append(
            _("This month: %(left)s of %(limit)s tokens left (resets at %(reset)s).")
            % {
                "left": intcomma(quota.left_this_month),
                "limit": intcomma(quota.per_month),
                "reset": services.reset_text(month_reset),
            }
        )
    return {"lines": lines}


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
        "tooManySockets": _("Too many chats are open at once. Close one, then reconnect."),
        "frameTooLarge": _("Something in this conversation is too large to show live."),
        "serverFailed": _("The server failed while connecting this conversation."),
        "refused": _("The server refused the connection."),
        "connectionFailed": _("The connection keeps failing, so the page stopped trying."),
        "offlineKept": _(
            "You are offline. Your message stays here: send it when the connection is back."
        ),
        "copy": _("Copy"),
        "copied": _("Copied"),
        "copyCode": _("Copy code"),
        "copyAnswer": _("Copy answer"),
        "retry": _("Retry"),
        "continue": _("Continue"),
        "edit": _("Edit"),
        "editMessage": _("Edit message"),
        "saveAndSend": _("Save and send"),
        "branch": _("Branch"),
        "branchTitle": _("Branch into a new conversation"),
        "previousVersion": _("Previous version"),
        "nextVersion": _("Next version"),
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
        "showMore": _("Show more"),
        "showLess": _("Show less"),
        "assistantTyping": _("The assistant is writing…"),
        "answerDone": _("The answer is complete."),
        "jsonInvalid": json_invalid_note(),
        "usageText": usage_template(),
        "usageTextEstimated": usage_template(estimated=True),
        "usageEstimated": usage_estimated_note(),
        "tokensUsedEstimated": _("≈ %(prompt)s in · %(completion)s out (estimated)"),
        "heatmap": _("Heatmap"),
        "heatmapLabel": _("Token confidence heatmap. Arrow keys move between tokens."),
        "confidenceSummary": confidence_summary_template(),
        "leastCertain": _("Least certain:"),
        "alternatives": _("Alternatives"),
        "noAlternatives": _("No alternatives recorded."),
        "messageCount": _("%(count)s / %(max)s"),
        "messageTooLong": _("Too long: %(count)s / %(max)s characters. Shorten it to send it."),
        "settingsFailed": _("The settings could not be saved. Try again."),
        "attachedFiles": _("Attached files"),
        "attachmentsUploading": _("Wait until the files are uploaded, then send."),
        "imagesNotAccepted": _(
            "This model does not read images. Remove the image, or pick a model that "
            "accepts images."
        ),
        "personaImagesNotAccepted": _(
            "This persona's model does not read images. Remove the image, or pick a persona "
            "whose model accepts images."
        ),
        "tooManyFiles": _("A message can carry at most %(limit)s files."),
        "fileTooLarge": _("%(name)s is too large to attach."),
        "fileNotSupported": _(
            "%(name)s is not a supported file. Attach images (PNG, JPEG, WebP, GIF), "
            "text files (code, Markdown, CSV, JSON, plain text) or PDFs."
        ),
        "uploadFailed": _("The file could not be uploaded. Try again."),
        "readAloud": _("Read aloud"),
        "editAnswer": _("Edit answer"),
        "editedByYou": _("Edited by you"),
        "save": _("Save"),
        "codeBlock": _("A code block."),
        "goodAnswer": _("Good answer"),
        "badAnswer": _("Bad answer"),
        "ratingFailed": _("Your rating could not be saved. Try again."),
        "newChatFailed": _("The conversation could not be started. Try again."),
        "removeAttachment": _("Remove %(name)s"),
        "modelFailed": _("The model could not be changed. Try again."),
    }
