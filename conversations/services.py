"""The writes: start a conversation, post a message, start a reply, rename, delete.

Plain keyword-only functions, each atomic. The consumer, the views and the terminal chatbot all
call these: there is no second copy of "how a message is posted". The model call itself never
runs in here (nor inside any transaction): these functions only prepare the reply's row and the
request, and `replies` streams it.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import (
    Count,
    Exists,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import attachments as attached
from . import catalog, llm, selectors, snapshots
from .catalog import model_info
from .context import AttachedFile, Context, HistoryItem, prompt_budget, select_context
from .errors import ChatError
from .models import (
    Attachment,
    CallKind,
    Conversation,
    Message,
    ModelCall,
    Persona,
    Preferences,
    Role,
    Status,
)
from .tree import Node, Tree

logger = logging.getLogger(__name__)

TITLE_CHARS = 60
# Before a user's custom instructions in the system message: the model is told whose words
# they are (in English, as the personas' prompts are written; it answers in the user's
# language whatever language the prompt is in).
INSTRUCTIONS_LEAD = "The user's instructions for every conversation, in their own words:"


def start_conversation(
    *, user: Any, persona: Persona | None = None, overrides: dict[str, Any] | None = None
) -> Conversation:
    """A new conversation with its own copy of the persona's settings."""
    conversation = Conversation(user=user)
    _give_settings(conversation, persona, overrides)
    with transaction.atomic():
        conversation.save()
    return conversation


def _give_settings(
    conversation: Conversation, persona: Persona | None, overrides: dict[str, Any] | None
) -> None:
    """The persona (the default one unless given), a copy of its settings, then `overrides`."""
    persona = persona or Persona.objects.default()
    conversation.persona = persona
    if persona is not None:
        for name, value in persona.settings_dict().items():
            setattr(conversation, name, value)
    for name, value in (overrides or {}).items():
        if name in Conversation.SETTING_FIELDS:
            setattr(conversation, name, value)
    conversation.full_clean(exclude=["user", "persona"])


def start_new_chat(
    *, user: Any, persona: Persona | None = None, overrides: dict[str, Any] | None = None
) -> Conversation:
    """A conversation for the new-chat page and Reset: the user's newest blank one (no
    message, no title, not pinned) made new again, or else a new one.

    So starting a chat and then writing nothing, as many times as one likes, leaves at most
    one empty conversation, the one `/` comes back to (`selectors.blank_conversations`).
    """
    fresh = Conversation(user=user)
    _give_settings(fresh, persona, overrides)
    with transaction.atomic():
        blank = selectors.blank_conversations(user=user).select_for_update().first()
        # Checked again under the lock: a first message posted at the same moment locks the
        # conversation too, so it either waits and then lands in the new chat, or was stored
        # before and the conversation is not blank any more.
        if blank is None or blank.messages.exists():
            fresh.save()
            return fresh
        blank.persona = fresh.persona
        for name in Conversation.SETTING_FIELDS:
            setattr(blank, name, getattr(fresh, name))
        blank.created_at = blank.updated_at = timezone.now()
        blank.save()
    return blank


def end_replies(replies: Any, *, status: str, **final: Any) -> int:
    """Move streaming replies to their end: the one way a reply leaves `streaming`.

    The UPDATE is guarded on the status it expects, so the process that produced a reply and
    a sweep that found it orphaned can never overwrite each other: whichever ends it first
    wins, the other changes nothing (its count says so).
    """
    assert status != Status.STREAMING
    return replies.filter(status=Status.STREAMING).update(
        status=status,
        completed_at=timezone.now(),
        lease_expires_at=None,
        runner_channel="",
        **final,
    )


@dataclass
class End:
    """How a reply ended, to save: its status and final values (`end_replies`), and its
    call's row in the usage ledger, which takes the call's tokens: `call_usage` when the
    reply's own copy (`final`) adds up more calls than this one (a continued answer's)."""

    reply_id: int
    conversation_id: Any
    status: str
    final: dict[str, Any]
    call_id: int | None = None
    call_usage: dict[str, Any] | None = None

    def ledger_values(self, now: Any) -> dict[str, Any]:
        """Its call's row in the ledger: this call's tokens, and how and when it ended."""
        usage = self.final if self.call_usage is None else self.call_usage
        return {
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "estimated": bool(usage.get("usage_estimated")),
            "status": self.status,
            "ended_at": now,
        }


# From this many first calls ending together, one UPDATE copying what their replies were saved
# with costs the ORM less than an UPDATE of each (SQLite: 1 call 2.8 ms against 0.2; 200 calls
# 4.4 ms against 47).
COPY_CALLS_FROM = 12


def save_ends(ends: Sequence[End]) -> list[Message | Exception]:
    """Save the ends of several replies in one transaction (group commit); the saved rows.

    Each end is an UPDATE guarded on `streaming` (`end_replies`); the conversations' activity
    time and the rows read back are one statement each for the whole batch, the calls' tokens
    in the usage ledger one for many ends or one each for a few (`_end_calls`). The ledger
    takes the tokens even from an end a sweep beat: the call used them, whoever marked the
    reply. A batch that fails is saved again one end at a time: what failed it fails only its
    own reply, whose answer is the exception (its lease runs out and a sweep marks it
    interrupted).
    """
    try:
        with transaction.atomic():
            saved_ends: list[bool] = []
            for end in ends:
                rows = Message.objects.filter(pk=end.reply_id)
                saved_ends.append(bool(end_replies(rows, status=end.status, **end.final)))
                if not saved_ends[-1]:
                    # A sweep ended it first (its lease ran out while the database was away).
                    logger.warning("reply %s had been ended before its process could", end.reply_id)
            now = timezone.now()
            conversations = {end.conversation_id for end in ends}
            Conversation.objects.filter(pk__in=conversations).update(updated_at=now)
            _end_calls(ends, saved_ends, now)
        # The ledger's sums of a continued answer's calls only when one is among them: they
        # made reading back a single reply three times dearer.
        continued = any(end.call_usage is not None for end in ends)
        rows = Message.objects.with_usage() if continued else Message.objects.with_call()
        saved = rows.in_bulk([end.reply_id for end in ends])
        return [saved[end.reply_id] for end in ends]
    except Exception as exc:
        if len(ends) == 1:
            return [exc]
        return [save_ends([end])[0] for end in ends]


def _end_calls(ends: Sequence[End], saved: Sequence[bool], now: Any) -> None:
    """The ends' calls in the usage ledger, each with its own values (`End.ledger_values`);
    many first calls together (`COPY_CALLS_FROM`) in one UPDATE copying the tokens and status
    their replies were just saved with. A continuation's call (its own tokens, not the reply's
    sum) and the call of an end a sweep beat (`saved` false) always take their own."""
    first_calls = [
        was_saved and end.call_id is not None and end.call_usage is None
        for end, was_saved in zip(ends, saved, strict=True)
    ]
    copy = sum(first_calls) >= COPY_CALLS_FROM
    if copy:
        copied = [end for end, first in zip(ends, first_calls, strict=True) if first]
        reply = Message.objects.filter(
            model_call=OuterRef("pk"), pk__in=[end.reply_id for end in copied]
        )
        ModelCall.objects.filter(pk__in=[end.call_id for end in copied]).update(
            prompt_tokens=Subquery(reply.values("prompt_tokens")[:1]),
            completion_tokens=Subquery(reply.values("completion_tokens")[:1]),
            estimated=Subquery(reply.values("usage_estimated")[:1]),
            status=Subquery(reply.values("status")[:1]),
            ended_at=now,
        )
    for end, first in zip(ends, first_calls, strict=True):
        if end.call_id is not None and not (copy and first):
            ModelCall.objects.filter(pk=end.call_id).update(**end.ledger_values(now))


def sweep_orphaned_replies(*conversation_ids: Any) -> int:
    """Mark replies left `streaming` by a process that died as `interrupted`: those of the
    conversations named, or all of them.

    A live reply renews its lease while it streams; one whose lease ran out has no process
    producing it any more. The status and lease are part of the UPDATE's own filter, so this is
    safe to run from any process at any time: a reply that finishes meanwhile is not touched.
    """
    replies = Message.objects.orphaned(timezone.now())
    if conversation_ids:
        replies = replies.filter(conversation_id__in=conversation_ids)
    # Called on every socket connect and page view: a read (on the partial index of streaming
    # replies) spares the write, and SQLite's write lock, when there is nothing to sweep.
    if not replies.exists():
        return 0
    with transaction.atomic():
        calls = list(replies.exclude(model_call=None).values_list("model_call_id", flat=True))
        swept = end_replies(
            replies,
            status=Status.INTERRUPTED,
            finish_reason="",
            error=_("The server stopped while this answer was being written."),
        )
        # Their calls' tokens died with the process that counted them: the ledger says how
        # the calls ended, with no tokens (unless that process saved its end after all).
        ModelCall.objects.filter(Q(pk__in=calls) | Q(continues__in=calls), ended_at=None).update(
            status=Status.INTERRUPTED, ended_at=timezone.now()
        )
    return swept


def streaming_reply(conversation_id: Any, reply_id: int | None = None) -> Message | None:
    """The conversation's reply still being written (newest first), after sweeping orphans.

    One read of the conversation's streaming replies (none, nearly always): the sweep, a
    write, runs only when one of them has outlived its lease.
    """
    replies = Message.objects.filter(conversation_id=conversation_id, status=Status.STREAMING)
    if reply_id is not None:
        replies = replies.filter(pk=reply_id)
    streaming = list(replies.order_by("-id"))
    now = timezone.now()
    if any(reply.is_orphaned(now) for reply in streaming):
        sweep_orphaned_replies(conversation_id)
        streaming = list(replies.order_by("-id"))
    return streaming[0] if streaming else None


def _owned(conversations: Any, user: Any, conversation_id: Any) -> Conversation:
    try:
        return conversations.owned_by(user).get(pk=conversation_id)
    except (Conversation.DoesNotExist, ValueError, TypeError):
        raise ChatError("not_found", _("This conversation does not exist.")) from None


def get_owned(*, user: Any, conversation_id: Any) -> Conversation:
    return _owned(Conversation.objects, user, conversation_id)


def opened(*, user: Any, conversation_id: Any) -> tuple[Conversation, Message | None]:
    """A socket's conversation and its reply still being written (`streaming_reply`). Whether
    one is streaming comes with the conversation's row: nearly always none is, and the reply
    is then not read in a statement of its own (half a millisecond of the ORM's, at every
    socket's opening)."""
    streaming = Message.objects.filter(conversation=OuterRef("pk"), status=Status.STREAMING)
    conversations = Conversation.objects.annotate(streaming=Exists(streaming))
    conversation = _owned(conversations, user, conversation_id)
    return conversation, streaming_reply(conversation.pk) if conversation.streaming else None


@dataclass
class PreparedReply:
    """What `replies` needs to stream a reply whose row is already stored."""

    conversation: Conversation
    reply: Message
    request: dict[str, Any]
    created: list[Message] = field(default_factory=list)
    # False when a frame was resent: the messages exist and no reply is started again.
    is_new: bool = True
    # True when this reply's message gave the conversation its title.
    titled: bool = False
    # True when this reply's message took the conversation out of the archive.
    unarchived: bool = False
    # True when the reply is an earlier one going on (Continue): its text so far stays.
    continued: bool = False
    # The ledger's row of this call, when it is not the reply's own (a continuation's).
    call_id: int | None = None


def _lock(user: Any, conversation_id: Any) -> Conversation:
    """Row lock on the conversation: a rename, a pin or a delete waits for a reply's start."""
    return _owned(Conversation.objects.select_for_update(), user, conversation_id)


def _conversation_pk(value: Any) -> Any:
    try:
        return Conversation._meta.pk.to_python(value)
    except (ValidationError, ValueError, TypeError, AttributeError):
        return None


def _lock_for_replies(pairs: Iterable[tuple[Any, Any]]) -> dict[Any, Conversation]:
    """Lock the conversations of (user, conversation id) pairs and their owners' rows.

    The user's row: the limits count this user's replies and model calls across all of their
    conversations, so starts in two conversations at once must see each other. The
    conversation's: two tabs sending at the same moment must not both pass the "no reply is
    streaming" check. One statement for all the pairs, locking in the order of the owners'
    ids, so two batches with users in common cannot each hold a lock the other waits for.
    A conversation of someone else's is not locked; `_owned_from` refuses it.
    """
    conversation_ids, user_ids = set(), set()
    for user, conversation_id in pairs:
        pk = _conversation_pk(conversation_id)
        if pk is not None and getattr(user, "is_authenticated", False):
            conversation_ids.add(pk)
            user_ids.add(user.pk)
    if not conversation_ids:
        return {}
    locked = (
        # The user's custom instructions come along with their row (`system_prompt_for`).
        Conversation.objects.select_related("user", "user__preferences")
        .select_for_update(of=("self", "user"))
        .filter(pk__in=conversation_ids, user_id__in=user_ids)
        .order_by("user_id", "pk")
    )
    return {conversation.pk: conversation for conversation in locked}


def _owned_from(locked: dict[Any, Conversation], user: Any, conversation_id: Any) -> Conversation:
    conversation = locked.get(_conversation_pk(conversation_id))
    if conversation is None or conversation.user_id != user.pk:
        raise ChatError("not_found", _("This conversation does not exist."))
    return conversation


def _lock_for_reply(user: Any, conversation_id: Any) -> Conversation:
    return _owned_from(_lock_for_replies([(user, conversation_id)]), user, conversation_id)


@dataclass(frozen=True)
class QuotaState:
    """A user's tokens this day and this month (the usage ledger's), and their quotas' sizes
    (None: no limit), from `ReplyStates.of_users`."""

    used_today: int = 0
    used_this_month: int = 0
    per_day: int | None = None
    per_month: int | None = None

    @property
    def limited(self) -> bool:
        return self.per_day is not None or self.per_month is not None

    @property
    def left_today(self) -> int | None:
        return None if self.per_day is None else max(self.per_day - self.used_today, 0)

    @property
    def left_this_month(self) -> int | None:
        if self.per_month is None:
            return None
        return max(self.per_month - self.used_this_month, 0)


@dataclass(frozen=True)
class ReplyState:
    """What the limits need to know before a reply starts."""

    streaming_here: int
    running: int
    # The user's model calls in the last minute, whatever action made them.
    recent_calls: int
    quota: QuotaState = QuotaState()


def period_starts(now: Any = None) -> tuple[Any, Any]:
    """When this day and this month began (midnight, the first), in the server's time zone:
    when the daily and monthly quotas last reset."""
    local = timezone.localtime(now or timezone.now(), timezone.get_default_timezone())
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


def next_resets(now: Any = None) -> tuple[Any, Any]:
    """When the daily and monthly quotas reset next (server's time zone)."""
    day, month = period_starts(now)
    tz = day.tzinfo
    next_day = datetime.combine(day.date() + timedelta(days=1), time.min)
    next_month = datetime.combine((month.date() + timedelta(days=32)).replace(day=1), time.min)
    return timezone.make_aware(next_day, tz), timezone.make_aware(next_month, tz)


def _usage_and_quotas(users: set[Any]) -> dict[Any, tuple[int, QuotaState]]:
    """Per user: model calls in the last minute, and their `QuotaState`.

    A read of the calls of the last minute, and the quotas that apply to these users (held by
    the process: `snapshots`); the ledger's tokens of the day and the month are summed, a
    second read, only for the users a quota limits (what is used counts only against a limit).
    One query with the sums and the quotas as subqueries beside them took the ORM longer to
    build than the rest of a post.
    """
    now = timezone.now()
    day, month = period_starts(now)
    recent = dict(
        ModelCall.objects.filter(user_id__in=users, started_at__gte=now - timedelta(minutes=1))
        # A title is asked for by the app, not the user: it is not one of their messages.
        .exclude(kind=CallKind.TITLE)
        .values_list("user_id")
        .annotate(count=Count("pk"))
        .order_by()
    )
    limits = _quota_limits(users)
    limited = [user for user, limit in limits.items() if limit != (None, None)]
    used: dict[Any, tuple[int, int]] = {}
    if limited:
        tokens = Coalesce("prompt_tokens", 0) + Coalesce("completion_tokens", 0)
        sums = (
            ModelCall.objects.filter(user_id__in=limited, started_at__gte=month)
            .values_list("user_id")
            .annotate(
                today=Coalesce(Sum(tokens, filter=Q(started_at__gte=day)), 0),
                month=Coalesce(Sum(tokens), 0),
            )
            .order_by()
        )
        used = {user: (today, this_month) for user, today, this_month in sums}
    result = {}
    for user in users:
        per_day, per_month = limits.get(user, (None, None))
        today, this_month = used.get(user, (0, 0))
        result[user] = (recent.get(user, 0), QuotaState(today, this_month, per_day, per_month))
    return result


def _quota_limits(users: set[Any]) -> dict[Any, tuple[int | None, int | None]]:
    """Each user's tokens per day and per month (None: no limit), as `Quota` says: their own
    quota, or else the most generous of their groups' (a group with no limit on a period lifts
    that period's). From the table as this process holds it (`snapshots`)."""
    quotas = snapshots.quotas.get()
    limits = {}
    for user in users:
        if user in quotas.own:
            limits[user] = quotas.own[user]
        elif user in quotas.groups_of:
            of_groups = [quotas.of_groups[group] for group in quotas.groups_of[user]]
            limits[user] = (
                _most_generous(q[0] for q in of_groups),
                _most_generous(q[1] for q in of_groups),
            )
    return limits


def _most_generous(limits: Iterable[int | None]) -> int | None:
    values = list(limits)
    return None if None in values else max(values)


class ReplyStates:
    """The `ReplyState` of each conversation of a batch, kept up to date as its posts are
    accepted: the second message of a user in one batch counts the first."""

    def __init__(self) -> None:
        self.streaming: Counter[Any] = Counter()
        self.running: Counter[Any] = Counter()
        self.recent: Counter[Any] = Counter()
        self.quotas: dict[Any, QuotaState] = {}

    @classmethod
    def read(cls, conversations: Sequence[Conversation]) -> ReplyStates:
        states = cls.of_users({c.user_id for c in conversations})
        # Sweeping writes: only needed where a conversation shows a streaming reply.
        showing = {c.pk for c in conversations if states.streaming[c.pk]}
        if showing and sweep_orphaned_replies(*showing):
            states = cls.of_users({c.user_id for c in conversations})
        return states

    @classmethod
    def of_users(cls, users: set[Any]) -> ReplyStates:
        """The replies streaming for these users, their model calls in the last minute and
        their tokens against their quotas: two queries."""
        states = cls()
        if not users:
            return states
        streaming = (
            Message.objects.filter(status=Status.STREAMING, conversation__user_id__in=users)
            .values_list("conversation_id", "conversation__user_id")
            .annotate(count=Count("id"))
            .order_by()
        )
        for conversation_id, user_id, count in streaming:
            states.streaming[conversation_id] += count
            states.running[user_id] += count
        for user_id, (recent, quota) in _usage_and_quotas(users).items():
            states.recent[user_id] += recent
            states.quotas[user_id] = quota
        return states

    def of(self, conversation: Conversation) -> ReplyState:
        return ReplyState(
            self.streaming[conversation.pk],
            self.running[conversation.user_id],
            self.recent[conversation.user_id],
            self.quotas.get(conversation.user_id, QuotaState()),
        )

    def add_post(self, conversation: Conversation) -> None:
        """Count a message accepted in this batch and the reply it starts."""
        self.streaming[conversation.pk] += 1
        self.running[conversation.user_id] += 1
        self.recent[conversation.user_id] += 1


def user_state(user: Any) -> ReplyState:
    """The user's replies being written, model calls of the last minute and tokens against
    their quotas (no conversation)."""
    states = ReplyStates.of_users({user.pk})
    return ReplyState(
        0,
        states.running[user.pk],
        states.recent[user.pk],
        states.quotas.get(user.pk, QuotaState()),
    )


def quota_state(user: Any) -> QuotaState:
    """The user's tokens against their quotas, for the settings panel: a query when a quota
    limits them."""
    return _usage_and_quotas({user.pk}).get(user.pk, (0, QuotaState()))[1]


def _reply_state(conversation: Conversation) -> ReplyState:
    return ReplyStates.read([conversation]).of(conversation)


def _check_content(content: str, client_id: str, *, attachments: int = 0) -> str:
    """The message's text, stripped; it may be empty when files come with it."""
    content = content.strip()
    if not content and not attachments:
        raise ChatError("empty_message", _("The message is empty."), client_id)
    if len(content) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise ChatError(
            "message_too_long",
            _("The message is too long: %(count)d characters, the limit is %(limit)d.")
            % {"count": len(content), "limit": settings.CHAT_MAX_MESSAGE_CHARS},
            client_id,
        )
    return content


def _reply_in_progress(client_id: str) -> ChatError:
    return ChatError(
        "reply_in_progress",
        _("An answer is still being written in this conversation. Stop it first."),
        client_id,
    )


def _check_reply_limits(state: ReplyState, client_id: str) -> None:
    if state.streaming_here:
        raise _reply_in_progress(client_id)
    if state.running >= settings.CHAT_MAX_CONCURRENT_REPLIES:
        raise ChatError(
            "too_many_replies",
            _("You already have %(count)d answers being written. Wait for one to finish.")
            % {"count": state.running},
            client_id,
        )


def check_quota(state: ReplyState, client_id: str) -> None:
    """Refuse a model call once the user's tokens of the day or month reached their quota.

    Checked before the call, which may then use more than is left: how many tokens an answer
    takes is known only when it ends. Nothing is stored when it refuses."""
    quota = state.quota
    if quota.per_day is not None and quota.used_today >= quota.per_day:
        message = _(
            "You have used your daily quota of %(limit)s tokens. It resets at %(reset)s."
        ) % {"limit": intcomma(quota.per_day), "reset": reset_text(next_resets()[0])}
        raise ChatError("quota_exceeded", message, client_id)
    if quota.per_month is not None and quota.used_this_month >= quota.per_month:
        message = _(
            "You have used your monthly quota of %(limit)s tokens. It resets at %(reset)s."
        ) % {"limit": intcomma(quota.per_month), "reset": reset_text(next_resets()[1])}
        raise ChatError("quota_exceeded", message, client_id)


def reset_text(moment: Any) -> str:
    """A reset time as people read it, with the time zone it is in."""
    return f"{date_format(moment, 'DATETIME_FORMAT')} ({moment.tzname()})"


def check_rate(state: ReplyState, client_id: str, calls: int = 1) -> None:
    """Refuse when `calls` more model calls would pass the user's per-minute limit."""
    if state.recent_calls + calls > settings.CHAT_MESSAGES_PER_MINUTE:
        raise ChatError(
            "rate_limited",
            _("You are sending messages too fast (%(limit)d a minute). Wait a moment.")
            % {"limit": settings.CHAT_MESSAGES_PER_MINUTE},
            client_id,
        )


@dataclass(frozen=True)
class Stored:
    role: str
    content: str
    status: str
    attachments: tuple[AttachedFile, ...] = ()


@dataclass
class Branches:
    """A conversation's tree with the text of its messages: what a reply's context is made of."""

    tree: Tree = field(default_factory=Tree)
    stored: dict[int, Stored] = field(default_factory=dict)

    def history(self, path: list[int]) -> list[HistoryItem]:
        """The messages of `path` a model may see: no empty or still-streaming replies."""
        items = []
        for message_id in path:
            stored = self.stored[message_id]
            if (
                stored.role in (Role.USER, Role.ASSISTANT)
                and stored.status != Status.STREAMING
                and (stored.content or stored.attachments)
            ):
                items.append(
                    HistoryItem(message_id, stored.role, stored.content, stored.attachments)
                )
        return items

    def history_to(self, message_id: int | None) -> list[HistoryItem]:
        """The history of the path that ends with `message_id` (none: an empty one)."""
        return self.history(self.tree.path_to(message_id)) if message_id is not None else []

    def versions_under(self, parent_id: int | None) -> int:
        """How many versions a new message under `parent_id` makes at its fork."""
        return len(self.tree.children.get(parent_id, [])) + 1


def _branches(conversation_ids: Iterable[Any]) -> dict[Any, Branches]:
    """Each conversation's tree and texts, in one query whatever the messages or forks (a
    message's row once per file it carries), and one more for the files when there are any."""
    ids = set(conversation_ids)
    branches: dict[Any, Branches] = {pk: Branches() for pk in ids}
    if not ids:
        return branches
    rows = Message.objects.filter(conversation_id__in=ids).values_list(
        "conversation_id",
        "id",
        "parent_id",
        "selected_at",
        "role",
        "content",
        "status",
        "attachments__id",
    )
    messages: dict[int, tuple[Any, ...]] = {}
    file_ids: dict[int, list[int]] = {}
    for *message, file_id in rows:
        messages[message[1]] = message
        if file_id is not None:
            file_ids.setdefault(message[1], []).append(file_id)
    found = (
        Attachment.objects.in_bulk([f for fs in file_ids.values() for f in fs]) if file_ids else {}
    )
    nodes: dict[Any, list[Node]] = {}
    for conversation_id, pk, parent_id, selected_at, role, content, status in messages.values():
        nodes.setdefault(conversation_id, []).append(Node(pk, parent_id, selected_at, role))
        own = tuple(attached.attached_file(found[f]) for f in sorted(file_ids.get(pk, ())))
        branches[conversation_id].stored[pk] = Stored(role, content, status, own)
    for conversation_id, tree_nodes in nodes.items():
        branches[conversation_id].tree = Tree(tree_nodes)
    return branches


def history_of(conversation: Conversation) -> list[HistoryItem]:
    """The active path as a model sees it."""
    branches = _branches([conversation.pk])[conversation.pk]
    return branches.history(branches.tree.path())


def _reads_images(history: list[HistoryItem], model: str) -> bool:
    """Whether the request carries the history's images as images: only to a model that
    reads them. Asked of the model list only when there is an image to send."""
    if not any(a.is_image for item in history for a in item.attachments):
        return False
    return model_info(model).accepts_images


def instructions_of(user: Any) -> str:
    """The user's custom instructions ("" when they set none): read with the user's row where
    the conversation's lock reads it (`_lock_for_replies`), else one query."""
    try:
        return user.preferences.instructions
    except Preferences.DoesNotExist:
        return ""


def system_prompt_for(conversation: Conversation) -> str:
    """What a reply is sent as its system message: the conversation's system prompt, then its
    owner's custom instructions, which apply to every conversation of theirs."""
    instructions = instructions_of(conversation.user).strip()
    if not instructions:
        return conversation.system_prompt
    own = f"{INSTRUCTIONS_LEAD}\n{instructions}"
    return f"{conversation.system_prompt}\n\n{own}" if conversation.system_prompt else own


def rate_answer(*, user: Any, conversation_id: Any, message_id: int, rating: str) -> None:
    """The user's 👍 or 👎 on an answer of theirs that is written ("" takes it back)."""
    conversation = get_owned(user=user, conversation_id=conversation_id)
    rated = (
        Message.objects.filter(pk=message_id, conversation=conversation, role=Role.ASSISTANT)
        .exclude(status=Status.STREAMING)
        .update(rating=rating)
    )
    if not rated:
        raise ChatError("not_found", _("This answer does not exist, or is still being written."))


def save_instructions(*, user: Any, instructions: str) -> None:
    Preferences.objects.update_or_create(user=user, defaults={"instructions": instructions})


def _context_for(
    conversation: Conversation,
    parameters: dict[str, Any],
    history: list[HistoryItem],
    windows: dict[str, int] | None = None,
) -> Context:
    """What a call sends of the conversation: the newest messages that fit its model's window
    with room left for the answer (`prompt_budget`). `windows`: the models' context windows,
    when the caller read them already."""
    model = parameters["model"]
    window = (windows or {}).get(model) or catalog.context_windows([model])[model]
    return select_context(
        system_prompt=system_prompt_for(conversation),
        history=history,
        model=model,
        budget=prompt_budget(window, parameters.get("max_completion_tokens")),
        accepts_images=_reads_images(history, model),
    )


def _new_reply(
    conversation: Conversation,
    history: list[HistoryItem],
    *,
    now: Any,
    runner_channel: str,
    parent: Message | int | None,
    versions: int = 1,
    client_id: str = "",
    extra_messages: list[dict[str, str]] | None = None,
    extra_parameters: dict[str, Any] | None = None,
    windows: dict[str, int] | None = None,
) -> tuple[Message, dict[str, Any]]:
    """The reply's row, not saved yet, and the request that will produce it. `history` is the
    path the reply follows, up to its `parent`; `versions` its number of versions there.
    `windows`: the context windows of the models, when the caller read them already."""
    parameters = {
        **conversation.settings_dict(),
        "model": conversation.effective_model,
        **(extra_parameters or {}),
    }
    context = _context_for(conversation, parameters, history, windows)
    request = llm.build_request(parameters, context.messages + (extra_messages or []))
    call = ModelCall(
        user_id=conversation.user_id,
        started_at=now,
        conversation_id=conversation.pk,
        model=parameters["model"],
    )
    reply = Message(
        conversation=conversation,
        role=Role.ASSISTANT,
        status=Status.STREAMING,
        client_id=client_id,
        model=parameters["model"],
        parameters=parameters,
        context_from_id=context.context_from_id,
        lease_expires_at=now + timedelta(seconds=settings.CHAT_LEASE_SECONDS),
        runner_channel=runner_channel,
        created_at=now,
        selected_at=now,
    )
    if isinstance(parent, Message):
        reply.parent = parent
    else:
        reply.parent_id = parent
    reply.version = reply.versions = versions
    # The ledger's row, saved before the reply (`reply.model_call` then takes its id).
    reply.model_call = call
    return reply, request


def _create_reply(
    conversation: Conversation,
    history: list[HistoryItem],
    *,
    runner_channel: str,
    parent: Message | int | None,
    versions: int = 1,
    client_id: str = "",
    **extra: Any,
) -> tuple[Message, dict[str, Any]]:
    now = timezone.now()
    reply, request = _new_reply(
        conversation,
        history,
        now=now,
        runner_channel=runner_channel,
        parent=parent,
        versions=versions,
        client_id=client_id,
        **extra,
    )
    reply.model_call.save(force_insert=True)
    reply.save(force_insert=True)
    _save_titles_and_times([conversation], now)
    return reply, request


def _replay(conversation: Conversation, first_id: int) -> PreparedReply:
    """A frame resent with a known client id: hand back what it created the first time."""
    created = list(conversation.messages.with_usage().filter(id__gte=first_id)[:2])
    Message.objects.tree(conversation.pk).number(created)
    attached.load_payloads(created)
    reply = next((m for m in created if m.role == Role.ASSISTANT), created[0])
    return PreparedReply(conversation, reply, {}, created=created, is_new=False)


def _replay_stored(user: Any, conversation_id: Any, client_id: str) -> PreparedReply | None:
    """After a unique-constraint failure: what another transaction stored for this client id."""
    conversation = get_owned(user=user, conversation_id=conversation_id)
    return _resent({(conversation.pk, client_id): conversation}).get((conversation.pk, client_id))


def _resent(frames: dict[tuple[Any, str], Conversation]) -> dict[tuple[Any, str], PreparedReply]:
    """What frames sent before stored, by (conversation id, client id): a resent frame (its
    socket reconnected before the answer to it arrived) gets that back instead of a second
    message. One read for all of them; none for frames without a client id."""
    wanted = {key: conversation for key, conversation in frames.items() if key[1]}
    if not wanted:
        return {}
    stored = (
        Message.objects.filter(
            conversation_id__in={pk for pk, _ in wanted},
            client_id__in={client_id for _, client_id in wanted},
        )
        .values_list("conversation_id", "client_id")
        .annotate(first_id=Min("id"))
        .order_by()
    )
    return {
        (pk, client_id): _replay(wanted[pk, client_id], first_id)
        for pk, client_id, first_id in stored
        if (pk, client_id) in wanted
    }


ReplyMaker = Callable[[Conversation, ReplyState], PreparedReply]


def _reply_transaction(
    user: Any, conversation_id: Any, client_id: str, make: ReplyMaker
) -> PreparedReply:
    """Lock; hand back what a resent frame created, or `make` a new reply.

    Under the locks no other transaction can store the same client id, so a resent frame is
    found by the read; a unique-constraint failure is still answered with what was stored.
    """
    try:
        with transaction.atomic():
            conversation = _lock_for_reply(user, conversation_id)
            key = (conversation.pk, client_id)
            replayed = _resent({key: conversation}).get(key)
            if replayed is not None:
                return replayed
            state = _reply_state(conversation)
            check_rate(state, client_id)
            check_quota(state, client_id)
            return make(conversation, state)
    except IntegrityError:
        replayed = _replay_stored(user, conversation_id, client_id)
        if replayed is None:
            raise
        return replayed


@dataclass(frozen=True)
class Post:
    """A message sent, as `post_messages` takes it."""

    user: Any
    conversation_id: Any
    content: str
    client_id: str
    runner_channel: str = ""
    # The sender's language, for the errors: a batch holds the messages of several people.
    language: str | None = None
    # Ids of the files uploaded to the conversation for this message (`attachments`).
    attachments: tuple[int, ...] = ()


def post_message(
    *,
    user: Any,
    conversation_id: Any,
    content: str,
    client_id: str,
    runner_channel: str = "",
    attachments: Sequence[int] = (),
) -> PreparedReply:
    """Store the user's message (before any model call) and the reply's row."""
    post = Post(
        user,
        conversation_id,
        content,
        client_id,
        runner_channel,
        translation.get_language(),
        tuple(attachments),
    )
    result = post_messages([post])[0]
    if isinstance(result, Exception):
        raise result
    return result


def post_messages(posts: Sequence[Post]) -> list[PreparedReply | Exception]:
    """Store several messages, each with its reply's row, in one transaction (group commit).

    Each post is answered as if it had been sent alone, in the order given: its reply, what a
    resent frame stored the first time, or the `ChatError` that refused it (the second message
    of a user in a batch counts the first against the limits). The statements do not grow with
    the posts: a lock, the limits, two inserts, the histories and the conversations' update for
    the whole batch. A batch that fails on a unique client id (a frame resent to two processes
    at once) is stored again one post at a time.
    """
    try:
        with transaction.atomic():
            return _post_batch(posts)
    except Exception as exc:
        if len(posts) > 1:
            # Whatever failed the batch fails only the post it came from.
            return [_post_alone(post) for post in posts]
        if not isinstance(exc, IntegrityError):
            raise
        replayed = _replay_stored(posts[0].user, posts[0].conversation_id, posts[0].client_id)
        if replayed is None:
            raise
        return [replayed]


def _post_alone(post: Post) -> PreparedReply | Exception:
    try:
        return post_messages([post])[0]
    except Exception as exc:  # the post's own answer; the others are unaffected
        return exc


def _post_batch(posts: Sequence[Post]) -> list[PreparedReply | Exception]:
    results: dict[int, PreparedReply | Exception] = {}
    texts: dict[int, str] = {}
    for index, post in enumerate(posts):
        with translation.override(post.language):
            try:
                texts[index] = _check_content(
                    post.content, post.client_id, attachments=len(post.attachments)
                )
            except ChatError as exc:
                results[index] = exc
    locked = _lock_for_replies((posts[i].user, posts[i].conversation_id) for i in texts)
    # The uploads the posts name, not yet sent with a message: one read for the batch.
    wanted = {pk for i in texts for pk in posts[i].attachments}
    unsent = Attachment.objects.filter(pk__in=wanted, message=None).in_bulk() if wanted else {}
    files: dict[int, list[Attachment]] = {}
    states = ReplyStates.read(list(locked.values()))
    accepted: dict[int, Conversation] = {}
    first_in_batch: dict[tuple[Any, str], int] = {}
    resent: dict[int, int] = {}
    refused: dict[int, tuple[Any, str]] = {}
    for index in texts:
        post = posts[index]
        with translation.override(post.language):
            try:
                conversation = _owned_from(locked, post.user, post.conversation_id)
            except ChatError as exc:
                results[index] = exc
                continue
            key = (conversation.pk, post.client_id)
            if post.client_id and key in first_in_batch:
                resent[index] = first_in_batch[key]
                continue
            try:
                state = states.of(conversation)
                _check_reply_limits(state, post.client_id)
                check_rate(state, post.client_id)
                check_quota(state, post.client_id)
                files[index] = _claim_attachments(post, conversation, unsent)
            except ChatError as exc:
                results[index] = exc
                refused[index] = key
                continue
        states.add_post(conversation)
        accepted[index] = conversation
        first_in_batch[key] = index
    # A frame sent again (its socket reconnected before the answer came) is refused like a
    # new one (its reply streams, its files are taken, it counts against the rate) or fails
    # the batch on the unique client id: only then is what it stored the first time read,
    # not for every post. Either way it gets back what it stored.
    if refused:
        replays = _resent({key: locked[key[0]] for key in refused.values()})
        for index, key in refused.items():
            if key in replays:
                results[index] = replays[key]
    if accepted:
        results.update(_store_posts(posts, texts, accepted, files))
    for index, first in resent.items():
        stored = results[first]
        assert isinstance(stored, PreparedReply)
        results[index] = PreparedReply(
            stored.conversation, stored.reply, {}, created=stored.created, is_new=False
        )
    return [results[index] for index in range(len(posts))]


def _claim_attachments(
    post: Post, conversation: Conversation, unsent: dict[int, Attachment]
) -> list[Attachment]:
    """The uploads a post names, taken from `unsent` (so no other post of the batch has them):
    each one this conversation's and sent with no message yet; images only to a model that
    reads them."""
    if not post.attachments:
        return []
    limit = settings.CHAT_ATTACHMENTS_PER_MESSAGE
    ids = list(dict.fromkeys(post.attachments))
    if len(ids) > limit:
        raise ChatError(
            "too_many_attachments",
            ngettext(
                "A message can carry at most %(limit)d file.",
                "A message can carry at most %(limit)d files.",
                limit,
            )
            % {"limit": limit},
            post.client_id,
        )
    found = [unsent.get(pk) for pk in ids]
    if any(a is None or a.conversation_id != conversation.pk for a in found):
        raise ChatError(
            "attachment_not_found",
            _("An attached file is no longer available. Attach it again."),
            post.client_id,
        )
    claimed = [a for a in found if a is not None]
    if (
        any(a.kind == "image" for a in claimed)
        and not model_info(conversation.effective_model).accepts_images
    ):
        raise ChatError(
            "images_not_accepted",
            _(
                "This model does not read images. Remove the image, or pick a model that "
                "accepts images."
            ),
            post.client_id,
        )
    for attachment in claimed:
        del unsent[attachment.pk]
    return claimed


def _store_posts(
    posts: Sequence[Post],
    texts: dict[int, str],
    accepted: dict[int, Conversation],
    files: dict[int, list[Attachment]],
) -> dict[int, PreparedReply]:
    now = timezone.now()
    # Each message follows the end of its conversation's active path.
    branches = _branches(conversation.pk for conversation in accepted.values())
    messages: dict[int, Message] = {}
    for index, conversation in accepted.items():
        tree = branches[conversation.pk].tree
        message = messages[index] = Message(
            conversation=conversation,
            role=Role.USER,
            content=texts[index],
            client_id=posts[index].client_id,
            parent_id=tree.end(),
            created_at=now,
            selected_at=now,
        )
        message.version = message.versions = branches[conversation.pk].versions_under(
            message.parent_id
        )
    Message.objects.bulk_create(messages.values())
    for index, message in messages.items():
        if files.get(index):
            Attachment.objects.filter(pk__in=[a.pk for a in files[index]]).update(message=message)
            for attachment in files[index]:
                attachment.message = message
        message.attachment_payloads = [attached.payload(a) for a in files.get(index, [])]
    prepared: dict[int, PreparedReply] = {}
    windows = catalog.context_windows(c.effective_model for c in accepted.values())
    for index, conversation in accepted.items():
        own = branches[conversation.pk]
        message = messages[index]
        sent = tuple(attached.attached_file(a) for a in files.get(index, []))
        history = [
            *own.history(own.tree.path()),
            HistoryItem(message.pk, Role.USER, message.content, sent),
        ]
        # The first message names the conversation (or, with no text, its first file).
        titled = not conversation.title
        if titled:
            first_file = files[index][0].name if files.get(index) else ""
            conversation.title = title_from(texts[index] or first_file)
        conversation.updated_at = now
        reply, request = _new_reply(
            conversation,
            history,
            now=now,
            runner_channel=posts[index].runner_channel,
            parent=message,
            windows=windows,
        )
        prepared[index] = PreparedReply(
            conversation,
            reply,
            request,
            [messages[index], reply],
            titled=titled,
            unarchived=conversation.archived_at is not None,
        )
    # The calls' ledger rows first (the databases we run on hand back their ids), then the
    # replies that point at them.
    calls = ModelCall.objects.bulk_create(p.reply.model_call for p in prepared.values())
    for p, call in zip(prepared.values(), calls, strict=True):
        p.reply.model_call = call
    Message.objects.bulk_create(p.reply for p in prepared.values())
    titled = [p.conversation for p in prepared.values() if p.titled]
    _save_titles_and_times(accepted.values(), now, titled)
    return prepared


def _save_titles_and_times(
    conversations: Iterable[Conversation], now: Any, titled: Iterable[Conversation] | None = None
) -> None:
    """The conversations' update time, and the titles of `titled` (all of them unless told):
    each row written once, in at most two statements whatever the batch. The time is one value
    for all, a plain UPDATE for the conversations with no new title; new titles are one
    `bulk_update` (a CASE per row and field), or for a single one, as a message alone brings,
    a plain UPDATE, which costs the ORM a fraction of it (0.12 ms against 0.63 on SQLite,
    0.65 against 1.18 on PostgreSQL).
    """
    conversations = list(conversations)
    titled = conversations if titled is None else list(titled)
    for conversation in conversations:
        # A message in an archived conversation takes it back to the sidebar.
        conversation.updated_at, conversation.archived_at = now, None
    if len(titled) == 1:
        Conversation.objects.filter(pk=titled[0].pk).update(
            title=titled[0].title, updated_at=now, archived_at=None
        )
    elif titled:
        Conversation.objects.bulk_update(titled, ["title", "updated_at", "archived_at"])
    named = {conversation.pk for conversation in titled}
    others = [c.pk for c in conversations if c.pk not in named]
    if others:
        Conversation.objects.filter(pk__in=others).update(updated_at=now, archived_at=None)


@dataclass(frozen=True)
class Progress:
    """What a streaming reply has sent so far, to save; with no `content`, its lease alone."""

    reply_id: int
    seq: int
    content: str | None


def save_progress(saves: Sequence[Progress], lease_expires_at: Any) -> None:
    """Save the text of several streaming replies and renew their leases, together.

    In one transaction: an UPDATE of each reply with new text (its lease with it: each row
    written once), one for the leases of the others. A `bulk_update` of the texts in one
    statement, a CASE per row and field, cost the ORM three times the CPU (60 replies: 44 ms
    against 13 on SQLite, docs/benchmarks.md). A reply that ended meanwhile is not touched
    (the status is part of every UPDATE's filter): its final save knows best.
    """
    leases = [save.reply_id for save in saves if save.content is None]
    streaming = Message.objects.filter(status=Status.STREAMING)
    with transaction.atomic(using=Message.objects.db):
        for save in saves:
            if save.content is not None:
                streaming.filter(pk=save.reply_id).update(
                    content=save.content, seq=save.seq, lease_expires_at=lease_expires_at
                )
        if leases:
            streaming.filter(pk__in=leases).update(lease_expires_at=lease_expires_at)


def regenerate(
    *, user: Any, conversation_id: Any, client_id: str, runner_channel: str = ""
) -> PreparedReply:
    """A new answer to the question of the active path's last answer, beside it: the earlier
    answers stay, as versions. A path that ends with a question (a branch made from it) gets
    its first answer."""

    def make(conversation: Conversation, state: ReplyState) -> PreparedReply:
        _check_reply_limits(state, client_id)
        branches = _branches([conversation.pk])[conversation.pk]
        last = branches.tree.end()
        role = branches.stored[last].role if last is not None else None
        if role == Role.USER:
            question = last
        elif role == Role.ASSISTANT:
            question = branches.tree.parent_of(last)
        else:
            raise ChatError(
                "nothing_to_regenerate", _("There is no answer to regenerate."), client_id
            )
        reply, request = _create_reply(
            conversation,
            branches.history_to(question),
            runner_channel=runner_channel,
            parent=question,
            versions=branches.versions_under(question),
            client_id=client_id,
        )
        return PreparedReply(conversation, reply, request, created=[reply])

    return _reply_transaction(user, conversation_id, client_id, make)


CONTINUE_PROMPT = "Continue exactly where your previous answer stopped, without repeating it."


def continue_reply(
    *, user: Any, conversation_id: Any, client_id: str, runner_channel: str = ""
) -> PreparedReply:
    """Ask for the rest of the active path's last answer, cut off by the token limit: the same
    answer goes on streaming, its text so far kept (also when the continuation fails)."""

    def make(conversation: Conversation, state: ReplyState) -> PreparedReply:
        _check_reply_limits(state, client_id)
        branches = _branches([conversation.pk])[conversation.pk]
        last = branches.tree.end()
        if last is None or branches.stored[last].status != Status.TRUNCATED:
            raise ChatError("nothing_to_continue", _("The last answer was not cut off."), client_id)
        parameters = {**conversation.settings_dict(), "model": conversation.effective_model}
        history = branches.history(branches.tree.path())
        context = _context_for(conversation, parameters, history)
        request = llm.build_request(
            parameters, [*context.messages, {"role": "user", "content": CONTINUE_PROMPT}]
        )
        now = timezone.now()
        # Guarded on the status it expects, as every move of a reply's status is.
        Message.objects.filter(pk=last, status=Status.TRUNCATED).update(
            status=Status.STREAMING,
            finish_reason="",
            error="",
            completed_at=None,
            lease_expires_at=now + timedelta(seconds=settings.CHAT_LEASE_SECONDS),
            runner_channel=runner_channel,
        )
        # With its ledger row: the reply's payload reads its usage there, and is built in the
        # event loop, where no query may run.
        reply = Message.objects.with_usage().get(pk=last)
        branches.tree.number([reply])
        # The continuation is a call of its own, with its own row and tokens; the answer's
        # usage adds up its call's and its continuations' (`MessageQuerySet.with_usage`).
        call = ModelCall.objects.create(
            user_id=conversation.user_id,
            started_at=now,
            conversation_id=conversation.pk,
            model=parameters["model"],
            kind=CallKind.CONTINUATION,
            continues_id=reply.model_call_id,
        )
        if reply.model_call_id is None:
            # An imported answer has no call of its own: its first one made here becomes it.
            Message.objects.filter(pk=reply.pk).update(model_call=call)
            reply.model_call = call
        _save_titles_and_times([conversation], now)
        return PreparedReply(conversation, reply, request, continued=True, call_id=call.pk)

    return _reply_transaction(user, conversation_id, client_id, make)


def edit_message(
    *,
    user: Any,
    conversation_id: Any,
    message_id: int,
    content: str,
    client_id: str,
    runner_channel: str = "",
) -> PreparedReply:
    """Any user message, edited: the new text becomes a version beside it (a new branch from
    there) and is answered; the old branch stays whole."""

    def make(conversation: Conversation, state: ReplyState) -> PreparedReply:
        _check_reply_limits(state, client_id)
        branches = _branches([conversation.pk])[conversation.pk]
        original = branches.stored.get(message_id)
        if original is None or original.role != Role.USER:
            raise ChatError("not_editable", _("This message cannot be edited."), client_id)
        text = _check_content(content, client_id, attachments=len(original.attachments))
        parent = branches.tree.parent_of(message_id)
        now = timezone.now()
        edited = Message(
            conversation=conversation,
            role=Role.USER,
            content=text,
            client_id=client_id,
            parent_id=parent,
            created_at=now,
            selected_at=now,
        )
        edited.save(force_insert=True)
        edited.version = edited.versions = branches.versions_under(parent)
        # The edit keeps the files the message carried: copies of them, its own.
        kept = list(Attachment.objects.filter(message_id=message_id))
        attached.copy_to(kept, {message_id: edited}, conversation)
        copies = list(edited.attachments.all())
        edited.attachment_payloads = [attached.payload(a) for a in copies]
        sent = tuple(attached.attached_file(a) for a in copies)
        history = [*branches.history_to(parent), HistoryItem(edited.pk, Role.USER, text, sent)]
        reply, request = _create_reply(
            conversation, history, runner_channel=runner_channel, parent=edited
        )
        return PreparedReply(conversation, reply, request, created=[edited, reply])

    return _reply_transaction(user, conversation_id, client_id, make)


def edit_answer(
    *, user: Any, conversation_id: Any, message_id: int, content: str, limit: int = 100
) -> PathChange:
    """The user's own version of an answer, beside the model's (which stays, a version away):
    chosen at its fork, it is what the next answers follow. No model is asked."""
    with transaction.atomic():
        conversation = _lock_for_reply(user, conversation_id)
        original = Message.objects.filter(
            pk=message_id, conversation=conversation, role=Role.ASSISTANT
        ).first()
        if original is None:
            raise ChatError("not_found", _("This message does not exist."))
        # A reply a dead process left streaming is swept, as before a message, not in the way.
        if streaming_reply(conversation.pk) is not None:
            raise _reply_in_progress("")
        text = _check_content(content, "")
        now = timezone.now()
        Message.objects.create(
            conversation=conversation,
            role=Role.ASSISTANT,
            parent_id=original.parent_id,
            content=text,
            status=Status.COMPLETE,
            # Written by the user: no model, no parameters it was made with.
            edited=True,
            created_at=now,
            selected_at=now,
            completed_at=now,
        )
        _save_titles_and_times([conversation], now, titled=[])
        return _path_change(Message.objects.tree(conversation.pk), original.parent_id, limit)


@dataclass
class PathChange:
    """A version chosen: the active path from the fork down (`after_id` is the message it
    follows), at most `limit` of its newest messages; `from_id` is the newest left out."""

    after_id: int | None
    messages: list[Message]
    from_id: int | None


def select_version(
    *, user: Any, conversation_id: Any, message_id: int, version: int, limit: int = 100
) -> PathChange:
    """Choose version `version` (from 1) at the fork of `message_id`: one UPDATE of the chosen
    message; the tree and the new path's messages are one read each."""
    conversation = get_owned(user=user, conversation_id=conversation_id)
    tree = Message.objects.tree(conversation.pk)
    siblings = tree.siblings(message_id) if message_id in tree else []
    if not 1 <= version <= len(siblings):
        raise ChatError("no_such_version", _("This version does not exist."))
    chosen = siblings[version - 1]
    now = timezone.now()
    Message.objects.filter(pk=chosen).update(selected_at=now)
    tree.choose(chosen, now)
    return _path_change(tree, tree.parent_of(chosen), limit)


def show_message(
    *, user: Any, conversation_id: Any, message_id: int, limit: int = 100
) -> PathChange | None:
    """Make the path that holds a message the active one (a search found it in a version not
    shown): one UPDATE of the versions chosen on the way to it. None when it is shown already.
    """
    conversation = get_owned(user=user, conversation_id=conversation_id)
    tree = Message.objects.tree(conversation.pk)
    if message_id not in tree:
        raise ChatError("not_found", _("This message does not exist."))
    shown = tree.path()
    wanted = tree.path_to(message_id)
    if shown[: len(wanted)] == wanted:
        return None
    fork = next(i for i, (a, b) in enumerate(zip(shown, wanted, strict=False)) if a != b)
    now = timezone.now()
    Message.objects.filter(pk__in=wanted[fork:]).update(selected_at=now)
    for pk in wanted[fork:]:
        tree.choose(pk, now)
    return _path_change(tree, wanted[fork - 1] if fork else None, limit)


def _path_change(tree: Tree, after_id: int | None, limit: int) -> PathChange:
    """The active path after `after_id`: its newest `limit` messages, read in one query."""
    path = tree.path()
    tail = path[path.index(after_id) + 1 :] if after_id is not None else path
    from_id = tail[-limit - 1] if len(tail) > limit else None
    messages = list(Message.objects.filter(pk__in=tail[-limit:]).with_usage().order_by("id"))
    tree.number(messages)
    attached.load_payloads(messages)
    return PathChange(after_id, messages, from_id)


# What a branch copies of each message; the rest is the new conversation's own.
BRANCH_COPIED_FIELDS = (
    "role",
    "content",
    "status",
    "finish_reason",
    "model",
    "parameters",
    "prompt_tokens",
    "completion_tokens",
    "usage_estimated",
    "logprobs",
    "error",
    "edited",
    "rating",
    "seq",
    "created_at",
    "completed_at",
)


def branch_conversation(*, user: Any, conversation_id: Any, message_id: int) -> Conversation:
    """A new conversation with the same settings, holding the path up to `message_id` (the
    path that message is on, whichever version is shown now).

    The copies keep their text, status, usage and parameters, marked `imported`: the tokens
    they record are counted once, with the conversation they were spent in. A constant
    number of statements whatever the length of the path.
    """
    source = get_owned(user=user, conversation_id=conversation_id)
    tree = Message.objects.tree(source.pk)
    if message_id not in tree:
        raise ChatError("not_found", _("This message does not exist."))
    path = tree.path_to(message_id)
    originals = Message.objects.in_bulk(path)
    if originals[message_id].status == Status.STREAMING:
        raise ChatError(
            "reply_in_progress",
            _("This answer is still being written: branch from it once it has ended."),
        )
    with transaction.atomic():
        branch = Conversation(user=source.user, persona=source.persona)
        for name in Conversation.SETTING_FIELDS:
            setattr(branch, name, getattr(source, name))
        branch.title = (_("%(title)s (branch)") % {"title": source.title or _("New chat")})[:200]
        branch.save()
        copies = [
            Message(
                conversation=branch,
                imported=True,
                selected_at=originals[pk].created_at,
                **{name: getattr(originals[pk], name) for name in BRANCH_COPIED_FIELDS},
            )
            for pk in path
        ]
        Message.objects.bulk_create(copies)
        new_ids = {old: copy.pk for old, copy in zip(path, copies, strict=True)}
        for index, copy in enumerate(copies):
            copy.parent_id = copies[index - 1].pk if index else None
            copy.context_from_id = new_ids.get(originals[path[index]].context_from_id)
        Message.objects.bulk_update(copies, ["parent", "context_from_id"])
        files = list(Attachment.objects.filter(message_id__in=path))
        attached.copy_to(files, dict(zip(path, copies, strict=True)), branch)
    return branch


SIMULATOR_DIRECTIVE = re.compile(r"\[\[sim:[^\]]*\]\]")


def title_from(text: str) -> str:
    """A short title from the first message: its first line, cut at a word."""
    text = SIMULATOR_DIRECTIVE.sub("", text).strip()
    line = " ".join(text.splitlines()[0].split()) if text else ""
    if len(line) <= TITLE_CHARS:
        return line
    cut = line[:TITLE_CHARS].rsplit(" ", 1)[0] or line[:TITLE_CHARS]
    return cut.rstrip(" ,.;:") + "…"


_TITLE_LABEL = re.compile(r"^\s*(?:title|제목)\s*[:：]\s*", re.IGNORECASE)
_TITLE_EDGES = re.compile(r"^[\s\"'“”‘’«»「」『』*_#`]+|[\s\"'“”‘’«»「」『』*_#`.,;:!?。！？]+$")


def tidy_title(text: str) -> str:
    """A model's answer to the title request, made a title: its first line, without a label,
    quotes, markdown or end punctuation, cut as a first message is. No title (the first
    message's stays) when that line has no letter or digit: a small model asked about JSON
    answered the title request with JSON too, whose first line is `{`."""
    fence = "```"
    lines = (line for line in text.splitlines() if line.strip() and fence not in line)
    line = next(lines, "")
    title = title_from(_TITLE_EDGES.sub("", _TITLE_LABEL.sub("", line)))
    return title if any(character.isalnum() for character in title) else ""


def set_model_title(*, conversation_id: Any, replaces: str, title: str) -> bool:
    """Give a conversation the model's title, unless its title is no longer `replaces` (the one
    its first message gave it): a rename by its owner meanwhile wins. One UPDATE guarded on the
    old title, so no lock is held while the model is asked; whether it changed anything."""
    changed = Conversation.objects.filter(pk=conversation_id, title=replaces).update(title=title)
    return changed == 1


def rename_conversation(*, user: Any, conversation_id: Any, title: str) -> Conversation:
    with transaction.atomic():
        conversation = _lock(user, conversation_id)
        conversation.title = " ".join(title.split())[:200]
        conversation.save(update_fields=["title"])
    return conversation


def set_pinned(*, user: Any, conversation_id: Any, pinned: bool) -> Conversation:
    with transaction.atomic():
        conversation = _lock(user, conversation_id)
        conversation.pinned = pinned
        conversation.save(update_fields=["pinned"])
    return conversation


def set_archived(*, user: Any, conversation_id: Any, archived: bool) -> Conversation:
    with transaction.atomic():
        conversation = _lock(user, conversation_id)
        conversation.archived_at = timezone.now() if archived else None
        conversation.save(update_fields=["archived_at"])
    return conversation


def delete_conversation(*, user: Any, conversation_id: Any) -> None:
    with transaction.atomic():
        _lock(user, conversation_id).delete()


def update_conversation_settings(
    *, user: Any, conversation_id: Any, values: dict[str, Any]
) -> Conversation:
    """Save a conversation's generation settings; the next reply uses them."""
    with transaction.atomic():
        conversation = _lock(user, conversation_id)
        for name, value in values.items():
            if name in Conversation.SETTING_FIELDS:
                setattr(conversation, name, value)
        conversation.full_clean(exclude=["user", "persona"])
        conversation.save(update_fields=[n for n in values if n in Conversation.SETTING_FIELDS])
    return conversation
