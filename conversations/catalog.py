"""What the app knows of each model: its context window and whether it reads images; which
models users may pick; and the refresh of that list from the model's server.

The admin's model list (`ChatModel`) says it; a name the list does not hold falls back to the
settings (CHAT_CONTEXT_TOKENS_PER_MODEL, CHAT_CONTEXT_TOKENS) and to text only.

While the list is empty (no refresh yet, or a server that lists nothing) any model name is
accepted, as before the list existed: there is nothing to check a name against, and refusing
every name would leave no persona or conversation that could be saved. Once it holds a model,
only its usable models (enabled, and listed by the server at the last refresh) are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import llm, snapshots
from .context import budget_for
from .models import ChatModel


@dataclass(frozen=True)
class ModelInfo:
    name: str
    label: str
    context_window: int
    accepts_images: bool


def model_info(name: str) -> ModelInfo:
    """The facts of model `name` (a database query: call it from sync code)."""
    return _info(name, ChatModel.objects.filter(name=name).first())


def context_windows(names: Iterable[str]) -> dict[str, int]:
    """The context window of each model named, in tokens (the admin's list, as this process
    holds it: `snapshots`). Sync code only."""
    set_here = snapshots.context_windows.get()
    return {name: set_here.get(name) or budget_for(name) for name in set(names)}


def _info(name: str, row: ChatModel | None) -> ModelInfo:
    fallback = budget_for(name)
    if row is None:
        return ModelInfo(name, name, fallback, False)
    return ModelInfo(name, str(row), row.context_window or fallback, row.accepts_images)


@dataclass(frozen=True)
class Choices:
    """What a model select offers: the usable models, and the current one where it is not
    (so a select shows what is set, which saving then refuses with a sentence)."""

    options: list[tuple[str, str]]  # (name, label), in the admin's order
    current: ModelInfo
    list_is_empty: bool


def model_choices(current: str) -> Choices:
    """The options of a model select whose value is `current` (one query)."""
    rows = list(ChatModel.objects.all())
    options = [(row.name, str(row)) for row in rows if row.is_enabled and row.listed]
    info = _info(current, next((row for row in rows if row.name == current), None))
    if current and all(name != current for name, _label in options):
        label = current if not rows else _("%(model)s (not available)") % {"model": info.label}
        options.append((current, label))
    return Choices(options, info, not rows)


def check_model(name: str) -> None:
    """Refuse, with a sentence, a model name users may not have. Empty (the server's default,
    OPENAI_MODEL) always passes, and any name passes while the list is empty (see above)."""
    if not name:
        return
    row = ChatModel.objects.filter(name=name).first()
    if row is None:
        if not ChatModel.objects.exists():
            return
        raise ValidationError(
            _("The model server does not offer “%(model)s”: choose a model from the list."),
            code="unknown_model",
            params={"model": name},
        )
    if not row.listed:
        raise ValidationError(
            _("The model server no longer lists “%(model)s”: choose another model."),
            code="unlisted_model",
            params={"model": name},
        )
    if not row.is_enabled:
        raise ValidationError(
            _("The model “%(model)s” is switched off in the model list: choose another model."),
            code="disabled_model",
            params={"model": name},
        )


# The refresh.

# Models that read images, known by name, for a server whose cards do not say (OpenAI,
# Ollama, vLLM, llama.cpp): a first guess, made when the model is first seen; the admin has
# the last word.
VISION_NAMES = re.compile(
    r"gpt-4o|gpt-4\.1|gpt-4-turbo|gpt-4\.5|gpt-5|^o[134](?!-mini)|vision|llava|-vl\b|vl-|"
    r"pixtral|gemma-?3|minicpm-v|moondream|claude-3|gemini",
    re.IGNORECASE,
)
# Models that do not chat (OpenAI lists embeddings, speech and image models beside its chat
# models): created switched off, so the picker offers chat models only. The admin can switch
# one on.
NOT_CHAT_NAMES = re.compile(
    r"embed|whisper|tts|transcribe|dall-e|gpt-image|moderation|davinci|babbage|"
    r"realtime|audio|search|computer-use|rerank",
    re.IGNORECASE,
)
# The fields some servers add to a model's card that give its context window: OpenRouter's
# and LM Studio's `context_length`, vLLM's `max_model_len`, Groq's `context_window`.
WINDOW_FIELDS = ("context_length", "max_model_len", "context_window")


def _accepts_images(card: dict[str, Any]) -> bool:
    architecture = card.get("architecture")
    if isinstance(architecture, dict) and isinstance(architecture.get("input_modalities"), list):
        return "image" in architecture["input_modalities"]
    return bool(VISION_NAMES.search(card["id"]))


def _context_window(card: dict[str, Any]) -> int | None:
    for name in WINDOW_FIELDS:
        value = card.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 256:
            return value
    return None


def _new_model(card: dict[str, Any], now: Any) -> ChatModel:
    name = card["id"]
    return ChatModel(
        name=name,
        is_enabled=not NOT_CHAT_NAMES.search(name),
        context_window=_context_window(card),
        accepts_images=_accepts_images(card),
        listed=True,
        synced_at=now,
    )


@dataclass(frozen=True)
class SyncResult:
    created: list[str]
    listed: int
    unlisted: list[str]
    # OPENAI_MODEL, the model of personas that name none, when the server does not list it.
    missing_default: str = ""

    def summary(self) -> str:
        text = ngettext(
            "The model server lists %(count)d model.",
            "The model server lists %(count)d models.",
            self.listed,
        ) % {"count": self.listed}
        if self.created:
            text += " " + _("New: %(names)s.") % {"names": ", ".join(self.created)}
        if self.unlisted:
            text += " " + _("No longer listed: %(names)s.") % {"names": ", ".join(self.unlisted)}
        if self.missing_default:
            text += " " + _(
                "The default model “%(model)s” (OPENAI_MODEL) is not among them: set "
                "OPENAI_MODEL to one of them, or choose a model for every persona."
            ) % {"model": self.missing_default}
        return text


def sync_models(*, timeout: float | None = None) -> SyncResult:
    """Fill the model list from the server's `/v1/models`: a name seen for the first time is
    added, one the server no longer lists is kept and marked not listed (no longer usable),
    one it lists again is usable again. What the admin set (label, on/off, context window,
    images, position) is never overwritten. Raises `llm.ModelError` when the server fails:
    the list is then left as it was. `timeout`: see `llm.list_models`.
    """
    cards = [
        card
        for card in llm.list_models(timeout=timeout)
        if isinstance(card.get("id"), str) and card["id"]
    ]
    names = {card["id"][:100]: {**card, "id": card["id"][:100]} for card in cards}
    now = timezone.now()
    # The server is asked before the transaction: no lock is held while it answers. The
    # lock then keeps two refreshes at once (two admins, or the command beside the button)
    # from both creating the same new model, which the unique name would refuse.
    with transaction.atomic():
        known = set(ChatModel.objects.select_for_update().values_list("name", flat=True))
        new = [_new_model(card, now) for name, card in names.items() if name not in known]
        ChatModel.objects.bulk_create(new)
        ChatModel.objects.filter(name__in=names).update(listed=True, synced_at=now)
        gone = ChatModel.objects.filter(listed=True).exclude(name__in=names)
        unlisted = sorted(gone.values_list("name", flat=True))
        gone.update(listed=False)
    # Bulk writes send no signal: the windows of the new models apply at once in this process.
    transaction.on_commit(snapshots.context_windows.forget)
    missing = "" if settings.OPENAI_MODEL in names else settings.OPENAI_MODEL
    return SyncResult(sorted(model.name for model in new), len(names), unlisted, missing)
