"""The writes: start a conversation, post a message, rename, delete. Each is atomic."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from .models import Conversation, Persona


def start_conversation(*, user: Any, persona: Persona | None = None) -> Conversation:
    """A new conversation with its own copy of the persona's settings."""
    persona = persona or Persona.objects.default()
    conversation = Conversation(user=user, persona=persona)
    if persona is not None:
        for name, value in persona.settings_dict().items():
            setattr(conversation, name, value)
    with transaction.atomic():
        conversation.save()
    return conversation
