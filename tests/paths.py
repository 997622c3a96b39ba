"""Messages made in bulk for a test, as one path: each follows the one before it."""

from __future__ import annotations

from collections.abc import Iterable

from conversations.models import Message


def bulk_append(messages: Iterable[Message]) -> list[Message]:
    """`bulk_create` the messages, then link each to the one before it in its conversation
    (the first to what the conversation held): one path, as the app's own writes make it."""
    messages = list(messages)
    ends = {
        conversation_id: Message.objects.tree(conversation_id).end()
        for conversation_id in {m.conversation_id for m in messages}
    }
    Message.objects.bulk_create(messages)
    for message in messages:
        message.parent_id = ends[message.conversation_id]
        ends[message.conversation_id] = message.pk
    Message.objects.bulk_update(messages, ["parent"], batch_size=500)
    return messages
