"""Admin: personas fully managed, conversations browsable read-only."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import exports, llm, usage
from .models import Conversation, Message, Persona
from .views_export import download


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
                    "example_prompts",
                    "example_prompts_ko",
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
        "imported",
        "created_at",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "user",
        "persona",
        "model",
        "message_count",
        "token_count",
        "updated_at",
    ]
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

    actions = ["export_json", "export_markdown"]
    change_list_template = "admin/conversations/conversation/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        # One join over the messages serves both figures. Imported replies' tokens count in
        # no usage figure (`usage`).
        made_here = Q(messages__imported=False)
        return (
            super()
            .get_queryset(request)
            .annotate(
                _message_count=Count("messages"),
                _token_count=Sum("messages__prompt_tokens", filter=made_here)
                + Sum("messages__completion_tokens", filter=made_here),
            )
        )

    @admin.display(description=_("messages"), ordering="_message_count")
    def message_count(self, conversation: Conversation) -> int:
        return conversation._message_count  # type: ignore[attr-defined]

    @admin.display(description=_("tokens"), ordering="_token_count")
    def token_count(self, conversation: Conversation) -> int:
        return conversation._token_count or 0  # type: ignore[attr-defined]

    def _selected(self, queryset: QuerySet[Conversation]) -> list[Conversation]:
        return list(
            Conversation.objects.filter(pk__in=queryset.values("pk"))
            .select_related("persona", "user")
            .prefetch_related("messages")
            .order_by("-updated_at")
        )

    @admin.action(description=_("Export the selected conversations as JSON"))
    def export_json(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> HttpResponse:
        """One JSON export of them all; a user can import it into their own account."""
        chosen = self._selected(queryset)
        name = f"conversations-{timezone.localdate().isoformat()}.json"
        return download(exports.export_json(chosen), "application/json; charset=utf-8", name)

    @admin.action(description=_("Export the selected conversations as Markdown (zip)"))
    def export_markdown(
        self, request: HttpRequest, queryset: QuerySet[Conversation]
    ) -> HttpResponse:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for conversation in self._selected(queryset):
                ordered = sorted(conversation.messages.all(), key=lambda m: m.pk)
                stem = exports.filename(conversation, "md").removesuffix(".md")
                archive.writestr(
                    f"{conversation.user.get_username()}/{stem}-{str(conversation.pk)[:8]}.md",
                    exports.export_markdown(conversation, ordered),
                )
        name = f"conversations-{timezone.localdate().isoformat()}.zip"
        return download(buffer.getvalue(), "application/zip", name)

    def get_urls(self) -> list[Any]:
        usage_url = path(
            "usage/",
            self.admin_site.admin_view(self.usage_view),
            name="conversations_conversation_usage",
        )
        return [usage_url, *super().get_urls()]

    def usage_view(self, request: HttpRequest) -> TemplateResponse:
        """Tokens per user and day, the newest first."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            days = min(max(int(request.GET.get("days", 30)), 1), 366)
        except ValueError:
            days = 30
        try:
            user_id = int(request.GET["user"]) if request.GET.get("user") else None
        except ValueError:
            user_id = None
        today = timezone.localdate()
        rows = usage.daily_usage(since=today - timedelta(days=days - 1), user_id=user_id)
        totals = usage.Totals(
            sum(r.totals.prompt_tokens for r in rows),
            sum(r.totals.completion_tokens for r in rows),
            sum(r.totals.replies for r in rows),
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Token usage per user and day"),
            "rows": rows,
            "totals": totals,
            "days": days,
            "day_choices": [7, 30, 90, 365],
            "user_id": user_id,
        }
        return TemplateResponse(request, "admin/conversations/usage.html", context)
