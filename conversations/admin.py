"""Admin: personas and quotas fully managed; conversations and the usage ledger browsable
read-only, message contents only where CHAT_ADMIN_READS_MESSAGES allows."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from . import catalog, charts, exports, sharing, usage
from .accounts import end_sessions, session_tag
from .forms import ModelNameField, default_model_label
from .llm import ModelError
from .models import (
    ChatModel,
    Conversation,
    Message,
    ModelCall,
    Persona,
    Quota,
    Rating,
    ShareLink,
)
from .views_export import download


@admin.register(ChatModel)
class ChatModelAdmin(admin.ModelAdmin):
    """The models users may pick, filled from the server's /v1/models by the Refresh button
    (or `python manage.py sync_models`); the rest is the admin's to set."""

    list_display = [
        "name",
        "label",
        "is_enabled",
        "context_window",
        "accepts_images",
        "listed",
        "synced_at",
        "position",
    ]
    list_display_links = ["name"]
    list_editable = ["label", "is_enabled", "context_window", "accepts_images", "position"]
    list_filter = ["is_enabled", "listed", "accepts_images"]
    search_fields = ["name", "label"]
    readonly_fields = ["listed", "synced_at"]
    fields = [
        "name",
        "label",
        "is_enabled",
        "context_window",
        "accepts_images",
        "position",
        "listed",
        "synced_at",
    ]
    change_list_template = "admin/conversations/chatmodel/change_list.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The name is the server's: fixed once the model is in the list.
        if obj is not None:
            return ["name", *self.readonly_fields]
        return self.readonly_fields

    def get_urls(self) -> list[Any]:
        refresh = path(
            "refresh/",
            self.admin_site.admin_view(require_POST(self.refresh_view)),
            name="conversations_chatmodel_refresh",
        )
        return [refresh, *super().get_urls()]

    def refresh_view(self, request: HttpRequest) -> HttpResponse:
        """POST: fill the list from the server's /v1/models, then back to the list."""
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        try:
            result = catalog.sync_models()
        except ModelError as exc:
            self.message_user(
                request,
                _("The model list was not refreshed: %(reason)s") % {"reason": exc.message},
                messages.ERROR,
            )
        else:
            self.message_user(request, result.summary(), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:conversations_chatmodel_changelist"))


class PersonaAdminForm(forms.ModelForm):
    """The persona's model is chosen from the model list (`forms.ModelNameField`)."""

    class Meta:
        model = Persona
        fields = ["model"]  # and the rest of PersonaAdmin's fieldsets, which the admin adds

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "model" in self.fields:
            self.fields["model"] = ModelNameField(
                label=_("model"),
                required=False,
                current=self.instance.model,
                default_label=default_model_label(),
                free_text=True,
                help_text=_(
                    "One of the models of the model list (Models, filled from the server); "
                    "empty: the server's default model (OPENAI_MODEL)."
                ),
            )
        if "max_completion_tokens" in self.fields:
            # At least one token, as the field's validator says: the box offers no 0.
            self.fields["max_completion_tokens"].widget.attrs["min"] = 1


def _rated(rating: str) -> Subquery:
    """The answers of a persona's conversations rated `rating`."""
    answers = (
        Message.objects.filter(conversation__persona=OuterRef("pk"), rating=rating)
        .values("conversation__persona")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return Coalesce(Subquery(answers, output_field=IntegerField()), 0)


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    form = PersonaAdminForm
    list_display = [
        "__str__",
        "model_display",
        "temperature",
        "response_format",
        "is_active",
        "is_default",
        "position",
        "ratings",
    ]
    list_display_links = ["__str__"]
    list_editable = ["is_active", "position"]
    list_filter = ["is_active", "is_default", "response_format", "logprobs"]
    search_fields = ["name", "name_en", "description", "description_ko", "system_prompt"]
    actions = ["duplicate"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Persona]:
        return (
            super().get_queryset(request).annotate(good=_rated(Rating.GOOD), bad=_rated(Rating.BAD))
        )

    @admin.display(description=_("ratings"))
    def ratings(self, persona: Persona) -> str:
        """What people said of its answers: 👍 and 👎, over all its conversations."""
        return f"👍 {persona.good} · 👎 {persona.bad}"  # type: ignore[attr-defined]

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
                ],
                "description": _(
                    "Each text is shown in every language. Its twin in English or in Korean, "
                    "when filled in, replaces it for people who use the app in that language: "
                    "write the name in one language and the description in either."
                ),
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


def admins_read_messages() -> bool:
    """CHAT_ADMIN_READS_MESSAGES: off, the admin shows conversations' titles and usage but no
    message, system prompt or export of them."""
    return settings.CHAT_ADMIN_READS_MESSAGES


class MessageInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Message
    fields = ["role", "content", "status", "rating", "model", "tokens", "imported", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if admins_read_messages():
            return self.fields
        return [name for name in self.fields if name != "content"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return super().get_queryset(request).with_usage()

    @admin.display(description=_("tokens"))
    def tokens(self, message: Message) -> str:
        """The reply's tokens from the usage ledger (an imported one: what its file said)."""
        prompt, completion, estimated = message.usage
        if prompt is None and completion is None:
            return "–"
        text = f"{prompt or 0} + {completion or 0}"
        return f"≈ {text}" if estimated else text


def _conversation_tokens() -> Subquery:
    """The tokens of every call made for a conversation, from the usage ledger."""
    calls = (
        ModelCall.objects.filter(conversation_id=OuterRef("pk"))
        .values("conversation_id")
        .annotate(tokens=Coalesce(Sum("prompt_tokens"), 0) + Coalesce(Sum("completion_tokens"), 0))
        .values("tokens")
    )
    return Subquery(calls, output_field=IntegerField())


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
        # The tokens from the usage ledger, as every usage figure (`usage`): an imported
        # conversation made no call, and one whose answers were regenerated counts them all.
        return (
            super()
            .get_queryset(request)
            .annotate(_message_count=Count("messages"), _token_count=_conversation_tokens())
        )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = super().get_fields(request, obj)
        if admins_read_messages():
            return fields
        return [name for name in fields if name != "system_prompt"]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        if admins_read_messages():
            return self.search_fields
        return [name for name in self.search_fields if name != "messages__content"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not admins_read_messages():
            # An export is the messages themselves.
            actions.pop("export_json", None)
            actions.pop("export_markdown", None)
        return actions

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
            .prefetch_related(Prefetch("messages", Message.objects.with_usage()))
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
        """Tokens per user and day (the newest first) with their models, a chart per day and
        the totals per model, all from the usage ledger."""
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
        since = today - timedelta(days=days - 1)
        rows = usage.daily_usage(since=since, until=today, user_id=user_id)
        totals = sum((r.totals for r in rows), usage.NO_USAGE)
        per_day = usage.per_day(rows, since=since, until=today)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Token usage per user and day"),
            "rows": rows,
            "totals": totals,
            "chart": charts.daily_tokens(per_day, label=_("Tokens per day")),
            "per_model": usage.per_model(rows),
            "days": days,
            "day_choices": [7, 30, 90, 365],
            "user_id": user_id,
        }
        return TemplateResponse(request, "admin/conversations/usage.html", context)


@admin.register(ModelCall)
class ModelCallAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The usage ledger, one row per model call: read-only, and never deleted from here."""

    list_display = [
        "started_at",
        "user",
        "model",
        "kind",
        "prompt_tokens",
        "completion_tokens",
        "estimated",
        "status",
        "ended_at",
    ]
    list_filter = ["model", "kind", "status", "estimated", "started_at"]
    search_fields = ["user__username", "model"]
    date_hierarchy = "started_at"
    list_select_related = ["user"]
    readonly_fields = [*list_display, "conversation_id"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ["__str__", "user", "group", "tokens_per_day", "tokens_per_month"]
    list_select_related = ["user", "group"]
    autocomplete_fields = ["user", "group"]
    search_fields = ["user__username", "group__name"]
    fieldsets = [
        (
            None,
            {
                "fields": [("user", "group"), "tokens_per_day", "tokens_per_month"],
                "description": _(
                    "Tokens a user may use per day and per month, counted from the usage "
                    "ledger; days begin at midnight and months on the first, in the server's "
                    "time zone. A user's own quota replaces their groups'; without one, the "
                    "most generous of their groups' applies. Empty means no limit."
                ),
            },
        )
    ]


@admin.register(ShareLink)
class ShareLinkAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every share link of the site: who shared what, when, and whether it still opens."""

    list_display = ["__str__", "owner", "created_at", "include_system_prompt", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "include_system_prompt"]
    search_fields = ["title", "conversation__user__username"]
    date_hierarchy = "created_at"
    list_select_related = ["conversation__user"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = ["title", "owner", "created_at", "revoked_at", "include_system_prompt"]
        if admins_read_messages():
            fields.append("system_prompt")
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.get_fields(request, obj)

    @admin.display(description=_("owner"), ordering="conversation__user__username")
    def owner(self, link: ShareLink) -> str:
        return link.conversation.user.get_username()

    @admin.action(description=_("Revoke the selected share links"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ShareLink]) -> None:
        count = sharing.revoke_links(queryset)
        self.message_user(
            request,
            ngettext("%(count)d link revoked.", "%(count)d links revoked.", count)
            % {"count": count},
            messages.SUCCESS,
        )


admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class AccountAdmin(UserAdmin):
    """Django's user admin. A password set here (or taken away) closes the user's chat tabs,
    as a new password set by the user does (`accounts.py`): those sessions are no longer
    valid, and their sockets would otherwise chat on until they reconnect. An admin setting
    their own keeps the tabs of the session they set it from."""

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        # Django renews the session's key as it keeps its own user logged in: the tabs of
        # this browser know the session by the key it had.
        own_session = session_tag(request.session.session_key)
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and isinstance(response, HttpResponseRedirect):
            user_pk = get_user_model()._meta.pk.to_python(unquote(id))
            end_sessions(user_pk, keep=own_session if user_pk == request.user.pk else None)
        return response
