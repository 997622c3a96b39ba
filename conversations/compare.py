"""Compare: one prompt sent at once to two to four personas, or to one persona at several
temperatures or with several models.

Each column is an ordinary conversation (in the sidebar, continued like any other), made by
`services.start_conversation` and asked by `replies.post` (`services.post_messages`),
the same path as a message typed in the chat. The replies are started together with
`asyncio.gather` and stream as the server's own tasks, side by side, so the whole compare takes
about as long as its slowest reply rather than the sum of them (`bench/compare.py` measures it).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from . import replies, services
from .errors import ChatError
from .models import Conversation, Persona

MIN_COLUMNS = 2
MAX_COLUMNS = 4


@dataclass(frozen=True)
class Target:
    """One column: a persona, at its own temperature and with its own model unless one is
    given (`model_label`: how the column names its model)."""

    persona: Persona
    temperature: float | None = None
    model: str | None = None
    model_label: str = ""

    def label(self) -> str:
        """What tells this column's conversation apart in the sidebar (which shows the emoji)."""
        name = self.persona.display_name()
        if self.model is not None:
            return f"{name} · {self.model_label or self.model}"
        if self.temperature is None:
            return name
        return f"{name} · T {self.temperature:g}"

    def overrides(self) -> dict[str, Any] | None:
        """The settings this column changes in its persona's."""
        changed: dict[str, Any] = {}
        if self.temperature is not None:
            changed["temperature"] = self.temperature
        if self.model is not None:
            changed["model"] = self.model
        return changed or None


@dataclass
class Column:
    conversation: Conversation
    target: Target
    prepared: Any = None  # services.PreparedReply once its reply started
    error: ChatError | None = None


def check_room(user: Any, columns: int) -> None:
    """Refuse a compare that the user's limits could not start whole.

    `services.post_message` checks each message again; checking first means a compare never
    stops half-way with some columns asked and others refused.
    """
    state = services.user_state(user)
    if state.running + columns > settings.CHAT_MAX_CONCURRENT_REPLIES:
        raise ChatError(
            "too_many_replies",
            _(
                "A compare of %(columns)d needs %(columns)d answers at once; you may have "
                "%(limit)d being written, and %(streaming)d already are."
            )
            % {
                "columns": columns,
                "limit": settings.CHAT_MAX_CONCURRENT_REPLIES,
                "streaming": state.running,
            },
        )
    services.check_rate(state, "", calls=columns)
    services.check_quota(state, "")


def _create_columns(user: Any, prompt: str, targets: list[Target]) -> list[Column]:
    check_room(user, len(targets))
    title = services.title_from(prompt)
    columns = []
    with transaction.atomic():
        for target in targets:
            conversation = services.start_conversation(
                user=user, persona=target.persona, overrides=target.overrides()
            )
            # Named after the column first, so the sidebar tells the compared answers apart
            # even where it cuts a long title.
            conversation = services.rename_conversation(
                user=user, conversation_id=conversation.pk, title=f"{target.label()} · {title}"
            )
            columns.append(Column(conversation, target))
    return columns


async def start_compare(*, user: Any, prompt: str, targets: list[Target]) -> list[Column]:
    """Make one conversation per target and start all their replies at once.

    Returns when every reply has started (its rows stored); they stream on as the server's
    tasks. A column whose reply could not start carries its `error`.
    """
    if not MIN_COLUMNS <= len(targets) <= MAX_COLUMNS:
        raise ChatError(
            "invalid",
            _("Compare %(min)d to %(max)d answers.") % {"min": MIN_COLUMNS, "max": MAX_COLUMNS},
        )
    return await _start(user, prompt, targets)


async def _start(user: Any, prompt: str, targets: list[Target]) -> list[Column]:
    columns = await database_sync_to_async(_create_columns)(user, prompt, targets)
    results = await asyncio.gather(
        *(
            replies.post(
                user=user,
                conversation_id=column.conversation.pk,
                content=prompt,
                client_id=uuid.uuid4().hex,
            )
            for column in columns
        ),
        return_exceptions=True,
    )
    for column, result in zip(columns, results, strict=True):
        if isinstance(result, ChatError):
            column.error = result
        elif isinstance(result, BaseException):
            raise result
        else:
            column.prepared = result
    return columns


async def wait_for(columns: list[Column]) -> None:
    """Wait until the replies of these columns have ended (for scripts and the benchmark)."""
    running = replies.running_replies()
    tasks = [
        running[column.prepared.reply.pk].task
        for column in columns
        if column.prepared is not None and column.prepared.reply.pk in running
    ]
    await asyncio.gather(*(task for task in tasks if task is not None), return_exceptions=True)
