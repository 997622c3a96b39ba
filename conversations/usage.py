"""Token usage reads, all from the usage ledger (`ModelCall`, one row per model call): per
conversation for the chat page, per user, day and model for the admin.

A call's row takes its tokens when the reply ends, as the model's server reported them or, when
it sent none (some local servers, and every stopped reply), as the app counted them; the sums
say how many such calls they hold, so a total can be shown as estimated. Nothing but the end of
a call writes a row's tokens, so deleting a conversation, regenerating or editing an answer
changes no figure here, and an import (which makes no call) adds none.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from .models import Conversation, Message, ModelCall, Role


@dataclass(frozen=True)
class Totals:
    prompt_tokens: int
    completion_tokens: int
    # Model calls (answers, continuations, titles), whatever became of their replies.
    replies: int = 0
    # How many of the calls had their usage counted by the app (the server reported none).
    estimated: int = 0
    # The newest reply of the conversation, counted or not (imported): a page that shows one
    # no newer than this later (another version, an older page) knows it was counted already.
    last_reply_id: int | None = field(default=None, compare=False)

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.replies + other.replies,
            self.estimated + other.estimated,
        )


NO_USAGE = Totals(0, 0)


def _sums() -> dict[str, Any]:
    return {
        "prompt": Coalesce(Sum("prompt_tokens"), 0),
        "completion": Coalesce(Sum("completion_tokens"), 0),
        "replies": Count("id"),
        "estimated": Count("id", filter=Q(estimated=True)),
    }


def _totals(row: dict[str, Any]) -> Totals:
    return Totals(row["prompt"], row["completion"], row["replies"], row["estimated"])


def conversation_totals(conversation: Conversation) -> Totals:
    """Every call made for the conversation, including replies in every version and those
    deleted since: their tokens were spent. Two queries: the ledger's sums, and the newest
    reply the page may show (`Totals.last_reply_id`)."""
    row = ModelCall.objects.filter(conversation_id=conversation.pk).aggregate(**_sums())
    newest = Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).aggregate(
        last=Max("id")
    )
    return replace(_totals(row), last_reply_id=newest["last"])


@dataclass(frozen=True)
class DailyUsage:
    day: date
    username: str
    user_id: int
    totals: Totals
    # (model, totals) for each model the user called that day, the most used first.
    models: list[tuple[str, Totals]] = field(default_factory=list)


@dataclass(frozen=True)
class DayTotal:
    day: date
    totals: Totals


def _calls(since: date, until: date | None, user_id: int | None) -> QuerySet[ModelCall]:
    tz = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(since, time.min), tz)
    calls = ModelCall.objects.filter(started_at__gte=start)
    if until is not None:
        end = timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min), tz)
        calls = calls.filter(started_at__lt=end)
    if user_id is not None:
        calls = calls.filter(user_id=user_id)
    return calls


def daily_usage(
    *, since: date, until: date | None = None, user_id: int | None = None
) -> list[DailyUsage]:
    """Tokens per user and day (in the current time zone), newest day first, each with its
    split per model. One query.

    A call counts on the day it was made (`started_at`), with whatever usage it recorded; a
    call whose reply is still being written, or that the model never answered, counts as 0.
    """
    tz = timezone.get_current_timezone()
    rows = (
        _calls(since, until, user_id)
        .annotate(day=TruncDate("started_at", tzinfo=tz))
        .values("day", "user_id", "user__username", "model")
        .annotate(**_sums())
        .order_by("-day", "user__username", "model")
    )
    grouped: dict[tuple[date, int], tuple[str, list[tuple[str, Totals]]]] = {}
    for row in rows:
        key = (row["day"], row["user_id"])
        grouped.setdefault(key, (row["user__username"], []))[1].append((row["model"], _totals(row)))
    result = []
    for (day, uid), (username, models) in grouped.items():
        totals = sum((t for _model, t in models), NO_USAGE)
        models.sort(key=lambda item: (-item[1].total, item[0]))
        result.append(DailyUsage(day, username, uid, totals, models))
    return result


def per_day(rows: list[DailyUsage], *, since: date, until: date) -> list[DayTotal]:
    """The rows added up per day, oldest first, with every day of the period (0 if none)."""
    totals: dict[date, Totals] = {}
    for row in rows:
        totals[row.day] = totals.get(row.day, NO_USAGE) + row.totals
    days = (until - since).days + 1
    return [
        DayTotal(day, totals.get(day, NO_USAGE))
        for day in (since + timedelta(days=n) for n in range(days))
    ]


def per_model(rows: list[DailyUsage]) -> list[tuple[str, Totals]]:
    """The rows added up per model, the most used first."""
    totals: dict[str, Totals] = {}
    for row in rows:
        for model, figures in row.models:
            totals[model] = totals.get(model, NO_USAGE) + figures
    return sorted(totals.items(), key=lambda item: (-item[1].total, item[0]))
