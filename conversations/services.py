"""The writes: start a conversation, post a message, start a reply, rename, delete.

Plain keyword-only functions, each atomic. The consumer, the views and the terminal chatbot all
call these: there is no second copy of "how a message is posted". The model call itself never
runs in here (nor inside any transaction): these functions only prepare the reply's row and the
request, and `replies` streams it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import llm
from .context import HistoryItem, select_context
from .errors import ChatError
from .models import Conversation, Message, Persona, Role, Status
from .replies import sweep_orphaned_replies

if TYPE_CHECKING:
    from .exports import ImportedConversation

TITLE_CHARS = 60


def start_conversation(
    *, user: Any, persona: Persona | None = None, overrides: dict[str, Any] | None = None
) -> Conversation:
    """A new conversation with its own copy of the persona's settings."""
    persona = persona or Persona.objects.default()
    conversation = Conversation(user=user, persona=persona)
    if persona is not None:
        for name, value in persona.settings_dict().items():
            setattr(conversation, name, value)
    for name, value in (overrides or {}).items():
        if name in Conversation.SETTING_FIELDS:
            setattr(conversation, name, value)
    conversation.full_clean(exclude=["user", "persona"])
    with transaction.atomic():
        conversation.save()
    return conversation


def _owned(conversations: Any, user: Any, conversation_id: Any) -> Conversation:
    try:
        return conversations.owned_by(user).get(pk=conversation_id)
    except (Conversation.DoesNotExist, ValueError, TypeError):
        raise ChatError("not_found", _("This conversation does not exist.")) from None


def get_owned(*, user: Any, conversation_id: Any) -> Conversation:
    return _owned(Conversation.objects, user, conversation_id)


@dataclass
class PreparedReply:
    """What `replies` needs to stream a reply whose row is already stored."""

    conversation: Conversation
    reply: Message
    request: dict[str, Any]
    created: list[Message] = field(default_factory=list)
    updated: list[Message] = field(default_factory=list)
    deleted_ids: list[int] = field(default_factory=list)
    # False when a frame was resent: the messages exist and no reply is started again.
    is_new: bool = True
    # True when this reply's message gave the conversation its title.
    titled: bool = False


def _lock(user: Any, conversation_id: Any) -> Conversation:
    """Row lock on the conversation: a rename, a pin or a delete waits for a reply's start."""
    return _owned(Conversation.objects.select_for_update(), user, conversation_id)


def _lock_for_reply(user: Any, conversation_id: Any) -> Conversation:
    """Lock the user's row and the conversation's in one statement.

    The user's row: the limits count this user's replies and messages across all of their
    conversations, so starts in two conversations at once must see each other. The
    conversation's: two tabs sending at the same moment must not both pass the "no reply is
    streaming" check.
    """
    locked = Conversation.objects.select_related("user").select_for_update(of=("self", "user"))
    return _owned(locked, user, conversation_id)


@dataclass(frozen=True)
class ReplyState:
    """What the limits and a resent frame need to know, read in one query."""

    replayed_id: int | None
    streaming_here: int
    running: int
    recent_messages: int


# Read on every message sent, so written once as SQL: built with the ORM, compiling these
# filtered aggregates cost about 2 ms of CPU per message, ten times the query itself
# (docs/benchmarks.md). Plain SQL that SQLite and PostgreSQL both run; values are adapted by
# the fields themselves, as the ORM would.
REPLY_STATE_SQL = """
SELECT
    MIN(CASE WHEN m.conversation_id = %(conversation)s AND m.client_id = %(client_id)s
        THEN m.id END),
    COUNT(CASE WHEN m.status = %(streaming)s AND m.conversation_id = %(conversation)s
        THEN 1 END),
    COUNT(CASE WHEN m.status = %(streaming)s THEN 1 END),
    COUNT(CASE WHEN m.role = %(user_role)s AND m.created_at >= %(since)s THEN 1 END)
FROM {message} m INNER JOIN {conversation} c ON m.conversation_id = c.id
WHERE c.user_id = %(user)s AND (
    m.status = %(streaming)s
    OR (m.role = %(user_role)s AND m.created_at >= %(since)s)
    OR (m.conversation_id = %(conversation)s AND m.client_id = %(client_id)s)
)
"""


def _reply_state(conversation: Conversation, user: Any, client_id: str) -> ReplyState:
    connection = connections[Message.objects.db]
    field = Message._meta.get_field
    since = timezone.now() - timedelta(minutes=1)
    params = {
        "conversation": Conversation._meta.pk.get_db_prep_value(conversation.pk, connection),
        # No message has a NULL client id: a frame without one matches nothing.
        "client_id": client_id or None,
        "streaming": Status.STREAMING.value,
        "user_role": Role.USER.value,
        "since": field("created_at").get_db_prep_value(since, connection),
        "user": Conversation._meta.get_field("user").get_db_prep_value(user.pk, connection),
    }
    sql = REPLY_STATE_SQL.format(
        message=connection.ops.quote_name(Message._meta.db_table),
        conversation=connection.ops.quote_name(Conversation._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        replayed_id, streaming_here, running, recent = cursor.fetchone()
    return ReplyState(replayed_id, streaming_here, running, recent)


def _check_content(content: str, client_id: str) -> str:
    content = content.strip()
    if not content:
        raise ChatError("empty_message", _("The message is empty."), client_id)
    if len(content) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise ChatError(
            "message_too_long",
            _("The message is too long: %(count)d characters, the limit is %(limit)d.")
            % {"count": len(content), "limit": settings.CHAT_MAX_MESSAGE_CHARS},
            client_id,
        )
    return content


def _check_reply_limits(
    conversation: Conversation, user: Any, client_id: str, state: ReplyState
) -> None:
    # Sweeping writes; only a conversation that shows a streaming reply needs it.
    if state.streaming_here and sweep_orphaned_replies(conversation.pk):
        state = _reply_state(conversation, user, client_id)
    if state.streaming_here:
        raise ChatError(
            "reply_in_progress",
            _("An answer is still being written in this conversation. Stop it first."),
            client_id,
        )
    if state.running >= settings.CHAT_MAX_CONCURRENT_REPLIES:
        raise ChatError(
            "too_many_replies",
            _("You already have %(count)d answers being written. Wait for one to finish.")
            % {"count": state.running},
            client_id,
        )


def _check_rate(state: ReplyState, client_id: str) -> None:
    if state.recent_messages >= settings.CHAT_MESSAGES_PER_MINUTE:
        raise ChatError(
            "rate_limited",
            _("You are sending messages too fast (%(limit)d a minute). Wait a moment.")
            % {"limit": settings.CHAT_MESSAGES_PER_MINUTE},
            client_id,
        )


def history_of(conversation: Conversation) -> list[HistoryItem]:
    """The messages a model may see, oldest first: no empty or still-streaming replies."""
    rows = (
        conversation.messages.exclude(status=Status.STREAMING)
        .exclude(content="")
        .filter(role__in=[Role.USER, Role.ASSISTANT])
        .values_list("id", "role", "content")
    )
    return [HistoryItem(*row) for row in rows]


def _create_reply(
    conversation: Conversation,
    *,
    runner_channel: str,
    client_id: str = "",
    extra_messages: list[dict[str, str]] | None = None,
    extra_parameters: dict[str, Any] | None = None,
) -> tuple[Message, dict[str, Any]]:
    parameters = {
        **conversation.settings_dict(),
        "model": conversation.effective_model,
        **(extra_parameters or {}),
    }
    context = select_context(
        system_prompt=conversation.system_prompt,
        history=history_of(conversation),
        model=parameters["model"],
    )
    request = llm.build_request(parameters, context.messages + (extra_messages or []))
    now = timezone.now()
    reply = Message.objects.create(
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
    )
    conversation.updated_at = now
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=now, title=conversation.title)
    return reply, request


def _replay(conversation: Conversation, first_id: int) -> PreparedReply:
    """A frame resent with a known client id: hand back what it created the first time."""
    created = list(conversation.messages.filter(id__gte=first_id)[:2])
    reply = next((m for m in created if m.role == Role.ASSISTANT), created[0])
    return PreparedReply(conversation, reply, {}, created=created, is_new=False)


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
            state = _reply_state(conversation, user, client_id)
            if state.replayed_id is not None:
                return _replay(conversation, state.replayed_id)
            return make(conversation, state)
    except IntegrityError:
        conversation = get_owned(user=user, conversation_id=conversation_id)
        first = conversation.messages.filter(client_id=client_id).first() if client_id else None
        if first is None:
            raise
        return _replay(conversation, first.pk)


def post_message(
    *, user: Any, conversation_id: Any, content: str, client_id: str, runner_channel: str = ""
) -> PreparedReply:
    """Store the user's message (before any model call) and the reply's row."""

    def make(conversation: Conversation, state: ReplyState) -> PreparedReply:
        text = _check_content(content, client_id)
        _check_reply_limits(conversation, user, client_id, state)
        _check_rate(state, client_id)
        message = Message.objects.create(
            conversation=conversation, role=Role.USER, content=text, client_id=client_id
        )
        # The first message names the conversation, in the same statement as its update time.
        titled = not conversation.title
        if titled:
            conversation.title = title_from(text)
        reply, request = _create_reply(conversation, runner_channel=runner_channel)
        return PreparedReply(conversation, reply, request, [message, reply], titled=titled)

    return _reply_transaction(user, conversation_id, client_id, make)


def regenerate(
    *, user: Any, conversation_id: Any, client_id: str, runner_channel: str = ""
) -> PreparedReply:
    """Replace the last reply with a new one for the same question."""

    def make(conversation: Conversation, state: ReplyState) -> PreparedReply:
        _check_reply_limits(conversation, user, client_id, state)
        last = conversation.messages.order_by("-id").first()
        if last is None or last.role != Role.ASSISTANT:
            raise ChatError(
                "nothing_to_regenerate", _("There is no answer to regenerate."), client_id
            )
        deleted = [last.pk]
        last.delete()
        reply, request = _create_reply(
            conversation, runner_channel=runner_channel, client_id=client_id
        )
        return PreparedReply(conversation, reply, request, created=[reply], deleted_ids=deleted)

    return _reply_transaction(user, conversation_id, client_id, make)


CONTINUE_PROMPT = "Continue exactly where your previous answer stopped, without repeating it."


def continue_reply(
    *, user: Any, conversation_id: Any, client_id: str, runner_channel: str = ""
) -> PreparedReply:
    """Ask for the rest of a reply cut off by the token limit, as a new reply."""

    def make(conversation: Conversation, state: ReplyState) -> PreparedReply:
        _check_reply_limits(conversation, user, client_id, state)
        last = conversation.messages.order_by("-id").first()
        if last is None or last.status != Status.TRUNCATED:
            raise ChatError("nothing_to_continue", _("The last answer was not cut off."), client_id)
        reply, request = _create_reply(
            conversation,
            runner_channel=runner_channel,
            client_id=client_id,
            extra_messages=[{"role": "user", "content": CONTINUE_PROMPT}],
            extra_parameters={"continuation_of": last.pk},
        )
        return PreparedReply(conversation, reply, request, created=[reply])

    return _reply_transaction(user, conversation_id, client_id, make)


def edit_last_message(
    *,
    user: Any,
    conversation_id: Any,
    message_id: int,
    content: str,
    client_id: str,
    runner_channel: str = "",
) -> PreparedReply:
    """Change the last user message, drop the answer to it and ask again."""

    def make(conversation: Conversation, state: ReplyState) -> PreparedReply:
        text = _check_content(content, client_id)
        _check_reply_limits(conversation, user, client_id, state)
        last_user = conversation.messages.filter(role=Role.USER).order_by("-id").first()
        if last_user is None or last_user.pk != message_id:
            raise ChatError("not_editable", _("Only your last message can be edited."), client_id)
        later = list(conversation.messages.filter(id__gt=last_user.pk).values_list("id", flat=True))
        conversation.messages.filter(id__in=later).delete()
        last_user.content = text
        last_user.save(update_fields=["content"])
        reply, request = _create_reply(
            conversation, runner_channel=runner_channel, client_id=client_id
        )
        return PreparedReply(
            conversation, reply, request, created=[reply], updated=[last_user], deleted_ids=later
        )

    return _reply_transaction(user, conversation_id, client_id, make)


SIMULATOR_DIRECTIVE = re.compile(r"\[\[sim:[^\]]*\]\]")


def title_from(text: str) -> str:
    """A short title from the first message: its first line, cut at a word."""
    text = SIMULATOR_DIRECTIVE.sub("", text).strip()
    line = " ".join(text.splitlines()[0].split()) if text else ""
    if len(line) <= TITLE_CHARS:
        return line
    cut = line[:TITLE_CHARS].rsplit(" ", 1)[0] or line[:TITLE_CHARS]
    return cut.rstrip(" ,.;:") + "…"


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


def import_conversations(
    *, user: Any, conversations: list[ImportedConversation]
) -> list[Conversation]:
    """Write conversations read from an export file (`exports.parse_import` checked them) into
    `user`'s account, whoever's account they came from.

    One transaction: a failure half-way stores nothing. The settings come from the file, the
    persona only when one of that name exists here.
    """
    created = []
    now = timezone.now()
    with transaction.atomic():
        for item in conversations:
            conversation = start_conversation(
                user=user, persona=item.persona, overrides=item.settings
            )
            conversation.persona = item.persona
            conversation.title = item.title
            conversation.pinned = item.pinned
            conversation.created_at = item.created_at or now
            # Imported now: it comes first in the sidebar.
            conversation.updated_at = now
            conversation.save(
                update_fields=["persona", "title", "pinned", "created_at", "updated_at"]
            )
            Message.objects.bulk_create(
                Message(conversation=conversation, **fields) for fields in item.messages
            )
            created.append(conversation)
    return created
