"""Replies as a finished model call leaves them: the reply and its row in the usage ledger."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from conversations.models import Message, ModelCall, Role, Status


def ledger_reply(
    conversation,
    prompt,
    completion,
    *,
    estimated=False,
    days_ago=0,
    model="gpt-4o-mini",
    status=Status.COMPLETE,
):
    at = timezone.now() - timedelta(days=days_ago)
    call = ModelCall.objects.create(
        user_id=conversation.user_id,
        started_at=at,
        conversation_id=conversation.pk,
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        estimated=estimated,
        status=status,
        ended_at=at,
    )
    return Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="ok",
        status=status,
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        usage_estimated=estimated,
        parameters={"model": model, "temperature": 1.0},
        created_at=at,
        model_call=call,
    )


def record_in_ledger(reply: Message) -> Message:
    """Give a reply made in a test its call's row, with the tokens it records."""
    reply.model_call = ModelCall.objects.create(
        user_id=reply.conversation.user_id,
        started_at=reply.created_at,
        conversation_id=reply.conversation_id,
        model=reply.model,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        estimated=reply.usage_estimated,
        status=reply.status,
        ended_at=reply.created_at,
    )
    reply.save(update_fields=["model_call"])
    return reply
