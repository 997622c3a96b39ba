"""Small tables the admin edits and every message reads, held in each process for a few
seconds: the models' context windows and the token quotas.

Each message's transaction read them both, a query each: on PostgreSQL about a tenth of what
the app added to a reply's first token (the ORM's building of a statement costs more than the
statement). They change when an admin saves a form, not per message. A process reads a table
whole and keeps it for `FRESH_SECONDS`; a change saved through the models in this process (the
admin's forms, a command) is seen at once, one saved in another process within
`FRESH_SECONDS`. Django keeps its own `Site` and `ContentType` tables in memory the same way.
The tables are small: the admin's model list and the quotas, with the members of the groups
that have one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save

from .models import ChatModel, Quota

T = TypeVar("T")

# How long a process keeps a table before reading it again.
FRESH_SECONDS = 10.0

_snapshots: list[Snapshot[Any]] = []


class Snapshot(Generic[T]):
    """What `read` returns, read again once it is `FRESH_SECONDS` old or a model of
    `changed_by` was saved or deleted in this process."""

    def __init__(
        self,
        read: Callable[[], T],
        changed_by: Iterable[type[Model]],
        memberships: Iterable[type[Model]] = (),
    ) -> None:
        self._read = read
        self._held: tuple[float, T] | None = None
        self._lock = threading.Lock()
        for model in changed_by:
            post_save.connect(self._changed, sender=model, weak=False)
            post_delete.connect(self._changed, sender=model, weak=False)
        for through in memberships:
            m2m_changed.connect(self._changed, sender=through, weak=False)
        _snapshots.append(self)

    def get(self) -> T:
        held = self._held
        if held is None or time.monotonic() - held[0] >= FRESH_SECONDS:
            with self._lock:  # one thread reads; the others wait for its result
                held = self._held
                if held is None or time.monotonic() - held[0] >= FRESH_SECONDS:
                    read_at = time.monotonic()
                    held = self._held = (read_at, self._read())
        return held[1]

    def forget(self) -> None:
        self._held = None

    def _changed(self, using: str | None = None, **_signal: Any) -> None:
        """A change saved: read again at the next use, and again once it is committed (a
        thread that read the table meanwhile, from another connection, held it without)."""
        self.forget()
        transaction.on_commit(self.forget, using=using)


def forget_all() -> None:
    """Read every table again at its next use (tests, whose database is rolled back under
    the snapshots' feet)."""
    for snapshot in _snapshots:
        snapshot.forget()


def _read_windows() -> dict[str, int]:
    return dict(
        ChatModel.objects.filter(context_window__isnull=False).values_list("name", "context_window")
    )


# The context window the admin's list gives each model (not those it leaves empty).
context_windows: Snapshot[dict[str, int]] = Snapshot(_read_windows, [ChatModel])

Limits = tuple["int | None", "int | None"]  # tokens per day and per month; None: no limit


@dataclass(frozen=True)
class Quotas:
    """The `Quota` table: each user's own, each group's, and which group quotas each user
    is under."""

    own: dict[Any, Limits] = field(default_factory=dict)
    of_groups: dict[Any, Limits] = field(default_factory=dict)
    groups_of: dict[Any, list[Any]] = field(default_factory=dict)


def _read_quotas() -> Quotas:
    quotas = Quotas()
    for user_id, group_id, per_day, per_month in Quota.objects.values_list(
        "user_id", "group_id", "tokens_per_day", "tokens_per_month"
    ):
        if user_id is not None:
            quotas.own[user_id] = (per_day, per_month)
        else:
            quotas.of_groups[group_id] = (per_day, per_month)
    if quotas.of_groups:
        members = get_user_model().groups.through.objects.filter(group_id__in=quotas.of_groups)
        for user_id, group_id in members.values_list("user_id", "group_id"):
            quotas.groups_of.setdefault(user_id, []).append(group_id)
    return quotas


quotas: Snapshot[Quotas] = Snapshot(
    _read_quotas, [Quota], memberships=[get_user_model().groups.through]
)
