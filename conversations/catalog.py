"""What the app knows of each model: its context window and whether it reads images.

The admin's model list (`ChatModel`) says it; a name the list does not hold falls back to the
settings (CHAT_CONTEXT_TOKENS_PER_MODEL, CHAT_CONTEXT_TOKENS) and to text only.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from .models import ChatModel


@dataclass(frozen=True)
class ModelInfo:
    name: str
    label: str
    context_window: int
    accepts_images: bool


def model_info(name: str) -> ModelInfo:
    """The facts of model `name` (a database query: call it from sync code)."""
    row = ChatModel.objects.filter(name=name).first()
    fallback = settings.CHAT_CONTEXT_TOKENS_PER_MODEL.get(name, settings.CHAT_CONTEXT_TOKENS)
    if row is None:
        return ModelInfo(name, name, fallback, False)
    return ModelInfo(name, str(row), row.context_window or fallback, row.accepts_images)
