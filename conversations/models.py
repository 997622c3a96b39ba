"""Personas, conversations and their role-tagged messages."""

from __future__ import annotations

import secrets
import uuid
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q, Subquery, Sum
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from .tree import Node, Tree

TEMPERATURE_HELP = _(
    "How random the answer is, from 0 to 2. Low values (around 0.3) give consistent, factual "
    "answers; around 1 is natural conversation; 1.5 and above is creative up to incoherent."
)
MAX_TOKENS_HELP = _(
    "Upper limit on the length of one answer, in tokens (about ¾ of an English word, or about "
    "one Korean syllable). An answer that reaches it is cut off and marked as truncated. "
    "Leave empty for the model's own limit."
)
LOGPROBS_HELP = _(
    "Ask the model for the probability of every token it writes, so the chat can show how "
    "confident it was, token by token."
)
TOP_LOGPROBS_HELP = _(
    "How many alternative tokens (0 to 20) to show for each position, with their probabilities."
)
RESPONSE_FORMAT_HELP = _(
    "JSON object makes the model answer with one JSON object. OpenAI requires the word "
    "“JSON” in the instructions: when no message mentions it, the app adds “Respond with a "
    "single JSON object.” to the system prompt."
)
MAX_COMPLETION_TOKENS_LIMIT = 200_000


def validate_system_prompt_length(value: str) -> None:
    """At most CHAT_MAX_SYSTEM_PROMPT_CHARS characters: the prompt goes with every request.

    Read when it runs, so the limit is the setting's, not a number frozen in a migration.
    """
    limit = settings.CHAT_MAX_SYSTEM_PROMPT_CHARS
    if len(value) > limit:
        raise ValidationError(
            _(
                "The system prompt can be at most %(limit)s characters long; "
                "this one has %(count)s."
            ),
            code="max_length",
            params={
                "limit": number_format(limit, force_grouping=True),
                "count": number_format(len(value), force_grouping=True),
            },
        )


class ResponseFormat(models.TextChoices):
    TEXT = "text", _("Text")
    JSON_OBJECT = "json_object", _("JSON object")


class GenerationSettings(models.Model):
    """The settings a reply is generated with, shared by personas and conversations."""

    system_prompt = models.TextField(
        _("system prompt"),
        blank=True,
        validators=[validate_system_prompt_length],
        help_text=_("Instructions the model reads before the conversation: its role and tone."),
    )
    model = models.CharField(
        _("model"),
        max_length=100,
        blank=True,
        help_text=_("Leave empty to use the server's default model (OPENAI_MODEL)."),
    )
    temperature = models.FloatField(
        _("temperature"),
        default=1.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(2.0)],
        help_text=TEMPERATURE_HELP,
    )
    max_completion_tokens = models.PositiveIntegerField(
        _("max tokens"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_COMPLETION_TOKENS_LIMIT)],
        help_text=MAX_TOKENS_HELP,
    )
    response_format = models.CharField(
        _("response format"),
        max_length=20,
        choices=ResponseFormat,
        default=ResponseFormat.TEXT,
        help_text=RESPONSE_FORMAT_HELP,
    )
    logprobs = models.BooleanField(_("token confidence"), default=False, help_text=LOGPROBS_HELP)
    top_logprobs = models.PositiveSmallIntegerField(
        _("alternatives per token"),
        default=0,
        validators=[MaxValueValidator(20)],
        help_text=TOP_LOGPROBS_HELP,
    )

    SETTING_FIELDS = (
        "system_prompt",
        "model",
        "temperature",
        "max_completion_tokens",
        "response_format",
        "logprobs",
        "top_logprobs",
    )

    class Meta:
        abstract = True

    @classmethod
    def settings_constraints(cls, prefix: str) -> list[models.BaseConstraint]:
        """Database checks that hold even when a row is written around the forms."""
        return [
            models.CheckConstraint(
                condition=Q(temperature__gte=0) & Q(temperature__lte=2),
                name=f"{prefix}_temperature_0_to_2",
                violation_error_message=_("Temperature must be between 0 and 2."),
            ),
            models.CheckConstraint(
                condition=Q(max_completion_tokens__isnull=True)
                | (
                    Q(max_completion_tokens__gte=1)
                    & Q(max_completion_tokens__lte=MAX_COMPLETION_TOKENS_LIMIT)
                ),
                name=f"{prefix}_max_tokens_range",
                violation_error_message=_("Max tokens must be empty or a positive number."),
            ),
            models.CheckConstraint(
                condition=Q(top_logprobs__lte=20),
                name=f"{prefix}_top_logprobs_0_to_20",
                violation_error_message=_("Alternatives per token must be between 0 and 20."),
            ),
        ]

    def clean(self) -> None:
        super().clean()
        errors: dict[str, Any] = {}
        # JSON mode needs no word of the user's: `llm.ensure_json_instruction` adds it.
        if self.top_logprobs and not self.logprobs:
            errors["top_logprobs"] = _("Turn on token confidence to show alternatives.")
        if errors:
            raise ValidationError(errors)

    def settings_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.SETTING_FIELDS}

    @property
    def effective_model(self) -> str:
        return self.model or settings.OPENAI_MODEL


class ChatModelQuerySet(models.QuerySet["ChatModel"]):
    def usable(self) -> ChatModelQuerySet:
        """The models users may pick: switched on by the admin and listed by the server at
        the last refresh."""
        return self.filter(is_enabled=True, listed=True)


class ChatModel(models.Model):
    """A model the server offers, as the admin lets users have it.

    Filled from the server's `/v1/models` by `python manage.py sync_models` (or the admin's
    Refresh button): nothing is fetched on a page view. The server's list says only which
    names exist; the rest (label, on/off, context window, images) is the admin's to set. A
    model the server stops listing is kept, marked not listed, and can no longer be picked.
    """

    name = models.CharField(
        _("name"), max_length=100, unique=True, help_text=_("The model's id on the server.")
    )
    label = models.CharField(
        _("label"), max_length=100, blank=True, help_text=_("Shown to users; empty: the name.")
    )
    is_enabled = models.BooleanField(
        _("enabled"), default=True, help_text=_("Users can pick it and personas can use it.")
    )
    context_window = models.PositiveIntegerField(
        _("context window"),
        null=True,
        blank=True,
        validators=[MinValueValidator(256)],
        help_text=_(
            "How many tokens of the conversation the model reads at once. Empty: "
            "CHAT_CONTEXT_TOKENS_PER_MODEL or CHAT_CONTEXT_TOKENS."
        ),
    )
    accepts_images = models.BooleanField(
        _("accepts images"),
        default=False,
        help_text=_("The model reads images attached to a message (vision)."),
    )
    # Listed by the server at the last refresh.
    listed = models.BooleanField(_("listed by the server"), default=True, editable=False)
    synced_at = models.DateTimeField(_("last seen on the server"), null=True, blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)

    objects = ChatModelQuerySet.as_manager()

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("model")
        verbose_name_plural = _("models")

    def __str__(self) -> str:
        return self.label or self.name


# How many of a persona's example prompts the new-chat page offers.
EXAMPLE_PROMPTS_SHOWN = 4


class PersonaQuerySet(models.QuerySet["Persona"]):
    def active(self) -> PersonaQuerySet:
        return self.filter(is_active=True)

    def default(self) -> Persona | None:
        return self.active().filter(is_default=True).first() or self.active().first()


class Persona(GenerationSettings):
    # Each text is shown in every language; its twin in English (the name) or in Korean (the
    # description, the example prompts) replaces it for people who use the app in that one.
    name = models.CharField(
        _("name"),
        max_length=80,
        help_text=_("Shown in every language, unless the English name replaces it in English."),
    )
    name_en = models.CharField(
        _("English name"),
        max_length=80,
        blank=True,
        help_text=_("Shown instead of the name to people who use the app in English."),
    )
    description = models.CharField(
        _("description"),
        max_length=200,
        blank=True,
        help_text=_(
            "Shown in every language, unless the Korean description replaces it in Korean."
        ),
    )
    description_ko = models.CharField(
        _("Korean description"),
        max_length=200,
        blank=True,
        help_text=_("Shown instead of the description to people who use the app in Korean."),
    )
    emoji = models.CharField(_("emoji"), max_length=8, blank=True)
    example_prompts = models.TextField(
        _("example prompts"),
        blank=True,
        help_text=_(
            "A few messages to start with, one per line: the new-chat page offers the first "
            "four as buttons. Shown in every language, unless the Korean example prompts "
            "replace them in Korean."
        ),
    )
    example_prompts_ko = models.TextField(
        _("Korean example prompts"),
        blank=True,
        help_text=_("Shown instead of the example prompts to people who use the app in Korean."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    is_default = models.BooleanField(
        _("default"),
        default=False,
        help_text=_("The persona a new chat starts with. Exactly one persona is the default."),
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PersonaQuerySet.as_manager()

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("persona")
        verbose_name_plural = _("personas")
        constraints = [
            # At most one default, enforced by the database whatever writes the row.
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="persona_single_default",
                violation_error_message=_("Another persona is already the default."),
            ),
            models.CheckConstraint(
                condition=Q(is_default=False) | Q(is_active=True),
                name="persona_default_is_active",
                violation_error_message=_("The default persona must be active."),
            ),
            *GenerationSettings.settings_constraints("persona"),
        ]

    def __str__(self) -> str:
        return f"{self.emoji} {self.name}".strip()

    def save(self, *args: Any, **kwargs: Any) -> None:
        with transaction.atomic():
            if self.is_default:
                # Hand the default over in the same transaction, so the unique constraint
                # never sees two defaults and no reader ever sees none.
                Persona.objects.filter(is_default=True).exclude(pk=self.pk).update(is_default=False)
            elif not Persona.objects.filter(is_default=True).exclude(pk=self.pk).exists():
                # The first persona, or one saved while none is default, becomes the default.
                self.is_default = self.is_active
            super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self.is_default:
            raise ValidationError(
                _("The default persona cannot be deleted: make another persona the default first.")
            )
        return super().delete(*args, **kwargs)

    def display_name(self, language: str | None = None) -> str:
        language = language or get_language() or "en"
        if language.startswith("en") and self.name_en:
            return self.name_en
        return self.name

    def display_description(self, language: str | None = None) -> str:
        language = language or get_language() or "en"
        if language.startswith("ko") and self.description_ko:
            return self.description_ko
        return self.description

    def display_example_prompts(self, language: str | None = None) -> list[str]:
        """The example prompts in the user's language: at most four, one per line."""
        language = language or get_language() or "en"
        text = self.example_prompts
        if language.startswith("ko") and self.example_prompts_ko.strip():
            text = self.example_prompts_ko
        lines = (" ".join(line.split()) for line in text.splitlines())
        return [line for line in lines if line][:EXAMPLE_PROMPTS_SHOWN]

    def clean(self) -> None:
        super().clean()
        if self.is_default and not self.is_active:
            raise ValidationError({"is_active": _("The default persona must be active.")})
        if self.pk and not self.is_default:
            was_default = Persona.objects.filter(pk=self.pk, is_default=True).exists()
            if was_default:
                raise ValidationError(
                    {
                        "is_default": _(
                            "There must always be a default persona: make another persona "
                            "the default instead."
                        )
                    }
                )


class ConversationQuerySet(models.QuerySet["Conversation"]):
    def owned_by(self, user: Any) -> ConversationQuerySet:
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(user=user, importing=False)


class Conversation(GenerationSettings):
    """A chat. It keeps its own copy of the settings, so editing a persona rewrites nothing."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="conversations",
        verbose_name=_("user"),
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    persona = models.ForeignKey(
        Persona,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("persona"),
    )
    pinned = models.BooleanField(_("pinned"), default=False)
    # Put away by its owner: out of the sidebar (search still finds it), listed under Archived,
    # back in the sidebar with its next message or when taken out (`services.set_archived`).
    archived_at = models.DateTimeField(_("archived"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("last activity"), default=timezone.now)
    # Set while an import is still storing its messages: until then no page, socket or list
    # of its owner's shows it (`owned_by`), so nobody sees half of it (`conversations.imports`).
    importing = models.BooleanField(_("being imported"), default=False, editable=False)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        indexes = [
            models.Index(fields=["user", "-pinned", "-updated_at"], name="conv_user_activity"),
        ]
        constraints = GenerationSettings.settings_constraints("conversation")

    def __str__(self) -> str:
        return self.title or str(_("New chat"))


class Role(models.TextChoices):
    SYSTEM = "system", _("System")
    USER = "user", _("User")
    ASSISTANT = "assistant", _("Assistant")


class Status(models.TextChoices):
    STREAMING = "streaming", _("Streaming")
    COMPLETE = "complete", _("Complete")
    STOPPED = "stopped", _("Stopped")
    TRUNCATED = "truncated", _("Truncated")
    FILTERED = "filtered", _("Filtered")
    ERROR = "error", _("Error")
    INTERRUPTED = "interrupted", _("Interrupted")


class Rating(models.TextChoices):
    """What the user said of an answer (👍 / 👎)."""

    GOOD = "good", _("Good answer")
    BAD = "bad", _("Bad answer")


class MessageQuerySet(models.QuerySet["Message"]):
    def owned_by(self, user: Any) -> MessageQuerySet:
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(conversation__user=user)

    def with_call(self) -> MessageQuerySet:
        """With the reply's ledger row, for `Message.usage` of an answer never continued."""
        return self.select_related("model_call")

    def with_usage(self) -> MessageQuerySet:
        """With what `Message.usage` reads: the reply's ledger row, and the sums of the rows of
        its continuations (none, nearly always) as subqueries, in the same query."""
        continuations = (
            ModelCall.objects.filter(continues=OuterRef("model_call_id"))
            .order_by()
            .values("continues")
        )
        return self.with_call().annotate(
            continued_prompt=Subquery(
                continuations.annotate(total=Sum("prompt_tokens")).values("total")
            ),
            continued_completion=Subquery(
                continuations.annotate(total=Sum("completion_tokens")).values("total")
            ),
            continued_estimated=Exists(
                ModelCall.objects.filter(continues=OuterRef("model_call_id"), estimated=True)
            ),
        )

    def orphaned(self, now: Any = None) -> MessageQuerySet:
        """Replies marked streaming whose process stopped renewing the lease (the SQL twin of
        `Message.is_orphaned`)."""
        now = now or timezone.now()
        return self.filter(status=Status.STREAMING).filter(
            Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
        )

    def trees(self, conversation_ids: Any) -> dict[Any, Tree]:
        """The skeleton of each conversation's messages (`conversations.tree`): one query of
        four small columns, whatever the number of messages or forks."""
        rows = self.filter(conversation_id__in=list(conversation_ids)).values_list(
            "conversation_id", "id", "parent_id", "selected_at", "role"
        )
        nodes: dict[Any, list[Node]] = {}
        for conversation_id, *node in rows:
            nodes.setdefault(conversation_id, []).append(Node(*node))
        return {conversation_id: Tree(found) for conversation_id, found in nodes.items()}

    def tree(self, conversation_id: Any) -> Tree:
        return self.trees([conversation_id]).get(conversation_id) or Tree()

    def create(self, **kwargs: Any) -> Message:
        """A message; given no parent, it follows the end of its conversation's active path."""
        if "parent" not in kwargs and "parent_id" not in kwargs:
            conversation = kwargs.get("conversation")
            conversation_id = conversation.pk if conversation else kwargs["conversation_id"]
            kwargs["parent_id"] = self.tree(conversation_id).end()
        return super().create(**kwargs)


class Message(models.Model):
    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("conversation"),
    )
    # The message this one follows (`conversations.tree`); none for a conversation's first
    # messages. Messages are deleted only with their conversation, all at once, so nothing is
    # left pointing at a deleted parent; DO_NOTHING keeps that delete a single statement.
    parent = models.ForeignKey(
        "self",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent"),
    )
    # When this version was last chosen at its fork: the active path takes, at each fork, the
    # one chosen last. A new message counts as chosen.
    selected_at = models.DateTimeField(_("chosen"), default=timezone.now)
    role = models.CharField(_("role"), max_length=10, choices=Role)
    content = models.TextField(_("content"), blank=True)
    # An id the browser made, so a frame sent twice stores one message.
    client_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status, default=Status.COMPLETE)
    finish_reason = models.CharField(_("finish reason"), max_length=32, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    # The exact settings a reply was generated with, so it still says how it was made.
    parameters = models.JSONField(_("parameters"), null=True, blank=True)
    # The reply's own record of its usage, exported with it: for a reply made here, a copy of
    # its ledger row's (`model_call`, written in the same statement batch); for an imported
    # one, what the file said. The figures the app shows read the ledger (`usage`).
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), null=True, blank=True)
    # The model's server reported no usage (some local servers send none, and a stopped reply
    # never gets it): the tokens above were counted here, as the context window counts them.
    usage_estimated = models.BooleanField(_("usage estimated"), default=False)
    logprobs = models.JSONField(_("logprobs"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    # An answer the user wrote over the model's (Edit on an answer): a version of its own beside
    # the model's, which made no call of the model and counts in no usage.
    edited = models.BooleanField(_("edited by the user"), default=False)
    # The user's 👍 or 👎 on an answer ("" when none): the admin reads them per persona and model.
    rating = models.CharField(_("rating"), max_length=4, choices=Rating, blank=True, default="")
    # Came from an import file: the tokens it records were spent elsewhere (or never), so no
    # usage figure counts them (`conversations.usage`); they are kept to be shown.
    imported = models.BooleanField(_("imported"), default=False, editable=False)
    # The ledger's row of the call that made this reply (`ModelCall`): where every figure of
    # its usage is read. Replies made before the ledger were given theirs by migration 0009;
    # an imported reply has none.
    model_call = models.OneToOneField(
        "ModelCall",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reply",
        editable=False,
    )
    # Which earlier messages the model saw: every message from this id to the reply.
    context_from_id = models.PositiveBigIntegerField(null=True, blank=True)
    # How many deltas of a streaming reply the saved content holds.
    seq = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The channel of the task producing a streaming reply: stop and catch-up requests go there.
    runner_channel = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        indexes = [
            models.Index(fields=["conversation", "id"], name="message_conversation_order"),
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status="streaming"),
                name="message_streaming_lease",
            ),
            # The few rated answers, counted per persona in the admin.
            models.Index(
                fields=["conversation", "rating"], condition=~Q(rating=""), name="message_rated"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=~Q(client_id=""),
                name="message_unique_client_id",
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "streaming",
                        "complete",
                        "stopped",
                        "truncated",
                        "filtered",
                        "error",
                        "interrupted",
                    ]
                ),
                name="message_status_known",
            ),
        ]

    def __str__(self) -> str:
        # No content: the admin names messages with this, also where it may not read them
        # (CHAT_ADMIN_READS_MESSAGES).
        return f"{self.get_role_display()} #{self.pk}"

    def is_orphaned(self, now: Any) -> bool:
        """Streaming with no lease, or one that ran out: no process produces it any more."""
        return self.status == Status.STREAMING and (
            self.lease_expires_at is None or self.lease_expires_at < now
        )

    @property
    def is_reply(self) -> bool:
        return self.role == Role.ASSISTANT

    @property
    def usage(self) -> ReplyUsage:
        """The tokens to show for this reply: its ledger row's or, for an imported reply
        (which has none), what its file recorded. Load the rows with `with_usage()`."""
        call = self.model_call if self.model_call_id else None
        if call is None:
            return ReplyUsage(self.prompt_tokens, self.completion_tokens, self.usage_estimated)
        prompt, completion = call.prompt_tokens, call.completion_tokens
        # The answer's continuations, each a call of its own (`with_usage`).
        more_prompt = getattr(self, "continued_prompt", None)
        more_completion = getattr(self, "continued_completion", None)
        if more_prompt is not None:
            prompt = (prompt or 0) + more_prompt
        if more_completion is not None:
            completion = (completion or 0) + more_completion
        estimated = call.estimated or bool(getattr(self, "continued_estimated", False))
        return ReplyUsage(prompt, completion, estimated)


class AttachmentKind(models.TextChoices):
    IMAGE = "image", _("Image")
    TEXT = "text", _("Text file")
    PDF = "pdf", _("PDF")


ATTACHMENT_SUFFIXES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "application/pdf": ".pdf",
}


def attachment_path(attachment: Attachment, filename: str) -> str:
    """Where an attachment's file is stored: under its conversation, by a random name (the
    original name is kept on the row, never trusted as a path)."""
    suffix = ATTACHMENT_SUFFIXES.get(attachment.content_type, ".txt")
    return f"attachments/{attachment.conversation_id}/{secrets.token_urlsafe(16)}{suffix}"


class AttachmentQuerySet(models.QuerySet["Attachment"]):
    def owned_by(self, user: Any) -> AttachmentQuerySet:
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(conversation__user=user, conversation__importing=False)


class Attachment(models.Model):
    """An image, text file or PDF a user message carries (`conversations.attachments`).

    Uploaded before its message is sent, it belongs to the conversation and to no message
    until the message that names it is stored; then to that message only. Its file is in the
    default storage; the text of a text file or PDF is kept on the row too, as the model reads
    it. Deleted with its message or conversation, and its file with it (`delete_stored_file`).
    """

    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        related_name="attachments",
        verbose_name=_("conversation"),
    )
    message = models.ForeignKey(
        Message,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="attachments",
        verbose_name=_("message"),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=AttachmentKind)
    name = models.CharField(_("name"), max_length=255)
    content_type = models.CharField(_("content type"), max_length=100)
    size = models.PositiveIntegerField(_("size"))
    width = models.PositiveIntegerField(_("width"), null=True, blank=True)
    height = models.PositiveIntegerField(_("height"), null=True, blank=True)
    text = models.TextField(_("text"), blank=True)
    file = models.FileField(_("file"), upload_to=attachment_path, max_length=255)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    objects = AttachmentQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.name


class ReplyUsage(NamedTuple):
    prompt_tokens: int | None
    completion_tokens: int | None
    estimated: bool


class CallKind(models.TextChoices):
    # A message, a regeneration, an edit or a compare's column: the call that makes a reply.
    REPLY = "reply", _("Answer")
    # Continue: the rest of an answer cut off at the token limit, written into the same answer.
    CONTINUATION = "continuation", _("Continuation")
    # The short title the model is asked for after a conversation's first answer.
    TITLE = "title", _("Title")


class ModelCall(models.Model):
    """The usage ledger: one row per call of the model made for a user (a message, a
    regeneration, an edit, a continuation, a compare's column, a conversation's title).

    Written when the call starts (the per-minute limit counts these rows) and given its tokens
    when the reply ends, in the transaction that saves the end (`services.save_ends`). Nothing
    else changes it: the conversation and the reply are plain values here (the reply's link
    is on `Message.model_call`, set to null when the reply goes), so deleting a conversation,
    regenerating or editing an answer leaves every row and every figure as it was; an import
    writes none. Every usage figure the app shows is a sum over these rows (`usage`), and the
    quotas are checked against them (`services.ReplyStates`).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="model_calls",
        verbose_name=_("user"),
    )
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    # The conversation it was made for, kept as a value: deleting the conversation keeps it.
    conversation_id = models.UUIDField(_("conversation"), null=True, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    kind = models.CharField(_("kind"), max_length=12, choices=CallKind, default=CallKind.REPLY)
    # A continuation's answer's own call: an answer's tokens are those of its call and of the
    # continuations pointing at it (`MessageQuerySet.with_usage`).
    continues = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="continuations",
        verbose_name=_("continues"),
        editable=False,
    )
    # Null until the reply ends, and when the model never answered (nothing to count).
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), null=True, blank=True)
    # The model's server reported no usage (some local servers send none, and a stopped reply
    # never gets it): the tokens were counted here, as the context window counts them.
    estimated = models.BooleanField(_("estimated"), default=False)
    # How the reply ended; blank while it streams.
    status = models.CharField(_("status"), max_length=12, blank=True, choices=Status)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        verbose_name = _("model call")
        verbose_name_plural = _("model calls")
        indexes = [
            models.Index(fields=["user", "started_at"], name="model_call_user_time"),
            models.Index(fields=["conversation_id"], name="model_call_conversation"),
            models.Index(fields=["started_at"], name="model_call_time"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} at {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def total_tokens(self) -> int:
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


class Quota(models.Model):
    """Tokens a user may use per day and per month, set for one user or for a group.

    A user's own quota replaces their groups'; without one, the most generous of their groups'
    applies (a group with no limit on a period lifts that period's limit). Empty means no limit.
    Days and months begin at midnight and on the first in the server's time zone (TIME_ZONE).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="quota",
        verbose_name=_("user"),
    )
    group = models.OneToOneField(
        "auth.Group",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="quota",
        verbose_name=_("group"),
    )
    tokens_per_day = models.PositiveBigIntegerField(
        _("tokens per day"), null=True, blank=True, help_text=_("Empty: no daily limit.")
    )
    tokens_per_month = models.PositiveBigIntegerField(
        _("tokens per month"), null=True, blank=True, help_text=_("Empty: no monthly limit.")
    )

    class Meta:
        verbose_name = _("quota")
        verbose_name_plural = _("quotas")
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(group__isnull=True))
                | (Q(user__isnull=True) & Q(group__isnull=False)),
                name="quota_user_or_group",
                violation_error_message=_("A quota is for a user or for a group, not both."),
            ),
        ]

    def __str__(self) -> str:
        return str(self.user or self.group)

    def clean(self) -> None:
        super().clean()
        if (self.user_id is None) == (self.group_id is None):
            raise ValidationError(_("Choose a user or a group, not both."))


def new_share_token() -> str:
    """An unguessable token for a share link's address (256 bits from the OS's generator)."""
    return secrets.token_urlsafe(32)


class ShareLinkQuerySet(models.QuerySet["ShareLink"]):
    def owned_by(self, user: Any) -> ShareLinkQuerySet:
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(conversation__user=user)

    def live(self) -> ShareLinkQuerySet:
        return self.filter(revoked_at__isnull=True)


class ShareLink(models.Model):
    """A read-only link to a conversation's active path as it was when it was shared.

    The messages are copied into `snapshot` (role, text, model, status, time), so what is
    said afterwards, or edited, stays private until shared again. The page renders them with
    the chat's own pipeline (`conversations.rendering`) each time it is shown.
    """

    token = models.CharField(max_length=64, unique=True, default=new_share_token, editable=False)
    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        related_name="share_links",
        verbose_name=_("conversation"),
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    include_system_prompt = models.BooleanField(_("system prompt shared"), default=False)
    # Empty unless `include_system_prompt`: the prompt as it was when shared.
    system_prompt = models.TextField(_("system prompt"), blank=True)
    # [{"role", "content", "model", "status", "response_format", "created_at"}, ...]
    snapshot = models.JSONField(_("messages"), default=list, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    objects = ShareLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("share link")
        verbose_name_plural = _("share links")

    def __str__(self) -> str:
        return self.title or str(_("New chat"))

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


def validate_instructions_length(value: str) -> None:
    """As long as a system prompt may be (CHAT_MAX_SYSTEM_PROMPT_CHARS): they go with it."""
    limit = settings.CHAT_MAX_SYSTEM_PROMPT_CHARS
    if len(value) > limit:
        raise ValidationError(
            _("Your instructions can be at most %(limit)s characters long; these have %(count)s."),
            code="max_length",
            params={
                "limit": number_format(limit, force_grouping=True),
                "count": number_format(len(value), force_grouping=True),
            },
        )


class Preferences(models.Model):
    """What a user asks of every answer, in every conversation (ChatGPT's custom instructions,
    Open WebUI's own system prompt): sent after the conversation's system prompt
    (`services.system_prompt_for`). One row per user who has set them."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="preferences",
        verbose_name=_("user"),
    )
    instructions = models.TextField(
        _("custom instructions"), blank=True, validators=[validate_instructions_length]
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("preferences")
        verbose_name_plural = _("preferences")

    def __str__(self) -> str:
        return str(self.user)
