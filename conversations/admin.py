"""Admin: personas fully managed, conversations browsable read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import llm
from .models import Conversation, Message, Persona


class ModelChoicesInput(forms.TextInput):
    """A free-text model field that suggests the models the server lists at /v1/models."""

    template_name = "conversations/widgets/model_input.html"

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["models"] = llm.available_models()
        context["widget"]["attrs"]["list"] = f"{context['widget']['attrs']['id']}-models"
        return context


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "model_display",
        "temperature",
        "response_format",
        "is_active",
        "is_default",
        "position",
    ]
    list_display_links = ["__str__"]
    list_editable = ["is_active", "position"]
    list_filter = ["is_active", "is_default", "response_format", "logprobs"]
    search_fields = ["name", "name_en", "description", "description_ko", "system_prompt"]
    actions = ["duplicate"]
    fieldsets = [
        (
            _("Who it is"),
            {
                "fields": [
                    ("name", "emoji"),
                    "name_en",
                    "description",
                    "description_ko",
                    "system_prompt",
                ]
            },
        ),
        (
            _("How it answers"),
            {
                "fields": ["model", "temperature", "max_completion_tokens", "response_format"],
                "description": _(
                    "Temperature sets how random the answer is: low (about 0.3) for consistent, "
                    "factual answers, about 1 for conversation, 1.5 and above for creative text "
                    "that can turn incoherent."
                ),
            },
        ),
        (_("Token confidence"), {"fields": ["logprobs", "top_logprobs"]}),
        (_("Availability"), {"fields": ["is_active", "is_default", "position"]}),
    ]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "model":
            kwargs["widget"] = ModelChoicesInput
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description=_("model"), ordering="model")
    def model_display(self, persona: Persona) -> str:
        if persona.model:
            return persona.model
        return _("%(model)s (default)") % {"model": persona.effective_model}

    @admin.action(description=_("Duplicate the selected personas"))
    def duplicate(self, request: HttpRequest, queryset: QuerySet[Persona]) -> None:
        for persona in queryset:
            persona.pk = None
            persona.is_default = False
            persona.name = str(_("%(name)s (copy)") % {"name": persona.name})[:80]
            persona.save()
        count = queryset.count()
        self.message_user(
            request,
            ngettext("Duplicated %d persona.", "Duplicated %d personas.", count) % count,
            messages.SUCCESS,
        )

    def delete_model(self, request: HttpRequest, obj: Persona) -> None:
        obj.delete()

    def has_delete_permission(self, request: HttpRequest, obj: Persona | None = None) -> bool:
        if obj is not None and obj.is_default:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Persona]) -> None:
        kept = queryset.filter(is_default=True)
        if kept.exists():
            self.message_user(
                request,
                _("The default persona was kept: make another persona the default first."),
                messages.WARNING,
            )
        queryset.exclude(is_default=True).delete()


class ReadOnlyAdminMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MessageInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Message
    fields = [
        "role",
        "content",
        "status",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "created_at",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "user", "persona", "model", "message_count", "updated_at"]
    list_filter = ["persona", "updated_at", "created_at"]
    search_fields = ["title", "user__username", "messages__content"]
    date_hierarchy = "updated_at"
    list_select_related = ["user", "persona"]
    inlines = [MessageInline]
    readonly_fields = [
        "id",
        "user",
        "title",
        "persona",
        "pinned",
        *Conversation.SETTING_FIELDS,
        "created_at",
        "updated_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return super().get_queryset(request).annotate(_message_count=Count("messages"))

    @admin.display(description=_("messages"), ordering="_message_count")
    def message_count(self, conversation: Conversation) -> int:
        return conversation._message_count  # type: ignore[attr-defined]
