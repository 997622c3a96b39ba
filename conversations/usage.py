"""Token usage reads: per conversation for the chat page, per user and day for the admin.

Every reply stores the tokens its call used (`Message.prompt_tokens`, `completion_tokens`, as
the model's server reported them). These are sums over those columns, one query each.

A reply whose model server reported no usage has it counted by the app instead
(`Message.usage_estimated`); the sums say how many such replies they hold, so a total can be
shown as estimated.

Replies that came from an import file (`Message.imported`) count in none of them: their tokens
were spent elsewhere, or never, and a user could otherwise write any figure into a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from .models import Conversation, Message, Role


@dataclass(frozen=True)
class Totals:
    prompt_tokens: int
    completion_tokens: int
    replies: int = 0
    # How many of the replies had their usage counted by the app (the server reported none).
    estimated: int = 0
    # The newest reply of the conversation, counted or not (imported): a page that shows one
    # no newer than this later (another version, an older page) knows it was counted already.
    last_reply_id: int | None = field(default=None, compare=False)

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def counted() -> QuerySet[Message]:
    """The replies whose usage counts: those made here."""
    return Message.objects.filter(role=Role.ASSISTANT, imported=False)


def _sums() -> dict[str, Any]:
    return {
        "prompt": Coalesce(Sum("prompt_tokens"), 0),
        "completion": Coalesce(Sum("completion_tokens"), 0),
        "replies": Count("id"),
        "estimated": Count("id", filter=Q(usage_estimated=True)),
    }


def conversation_totals(conversation: Conversation) -> Totals:
    """Every reply of the conversation, in every version (`conversations.tree`): one query."""
    made_here = Q(imported=False)
    row = Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).aggregate(
        prompt=Coalesce(Sum("prompt_tokens", filter=made_here), 0),
        completion=Coalesce(Sum("completion_tokens", filter=made_here), 0),
        replies=Count("id", filter=made_here),
        estimated=Count("id", filter=made_here & Q(usage_estimated=True)),
        last_reply_id=Max("id"),
    )
    return Totals(
        row["prompt"], row["completion"], row["replies"], row["estimated"], row["last_reply_id"]
    )


@dataclass(frozen=True)
class DailyUsage:
    day: date
    username: str
    user_id: int
    totals: Totals


def daily_usage(
    *, since: date, until: date | None = None, user_id: int | None = None
) -> list[DailyUsage]:
    """Tokens per user and day (in the current time zone), newest day first.

    A reply counts on the day it was asked for (`created_at`), with whatever usage its call
    reported; replies that reported none (a failure before the usage chunk) count as 0.
    """
    tz = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(since, time.min), tz)
    replies = counted().filter(created_at__gte=start)
    if until is not None:
        end = timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min), tz)
        replies = replies.filter(created_at__lt=end)
    if user_id is not None:
        replies = replies.filter(conversation__user_id=user_id)
    rows = (
        replies.annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day", "conversation__user_id", "conversation__user__username")
        .annotate(**_sums())
        .order_by("-day", "conversation__user__username")
    )
    return [
        DailyUsage(
            row["day"],
            row["conversation__user__username"],
            row["conversation__user_id"],
            Totals(row["prompt"], row["completion"], row["replies"], row["estimated"]),
        )
        for row in rows
    ]
