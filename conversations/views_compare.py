"""Compare pages: pick the columns and write the prompt; watch the answers side by side.

Starting a compare is an async view: it runs in the server's event loop, where the replies it
starts (`compare.start_compare`) go on streaming as the server's tasks after the response.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from asgiref.sync import sync_to_async
from django import forms
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from . import catalog, compare
from .errors import ChatError
from .forms import PersonaChoiceField
from .models import Conversation, Persona
from .selectors import message_page
from .views import sidebar_context


class PersonaMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Persona) -> str:
        return f"{obj.emoji} {obj.display_name()}".strip()


class ModelNamesField(forms.MultipleChoiceField):
    """Models of the admin's list, by name: each is checked by `catalog.check_model`, which
    refuses one users may not have with its own sentence."""

    def valid_value(self, value: str) -> bool:
        return True  # `validate` checks each, with the model list's sentences

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        for name in value:
            catalog.check_model(name)


class CompareForm(forms.Form):
    PERSONAS = "personas"
    TEMPERATURES = "temperatures"
    MODELS = "models"

    prompt = forms.CharField(
        label=gettext_lazy("Message"), widget=forms.Textarea(attrs={"rows": 3})
    )
    mode = forms.ChoiceField(
        label=gettext_lazy("Compare"),
        choices=[
            (PERSONAS, gettext_lazy("Several personas")),
            (TEMPERATURES, gettext_lazy("One persona at several temperatures")),
            (MODELS, gettext_lazy("One persona with several models")),
        ],
        initial=PERSONAS,
        widget=forms.RadioSelect,
    )
    personas = PersonaMultipleChoiceField(
        label=gettext_lazy("Personas"),
        queryset=Persona.objects.active(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Two to four."),
    )
    persona = PersonaChoiceField(
        label=gettext_lazy("Persona"),
        queryset=Persona.objects.active(),
        required=False,
        empty_label=None,
    )
    temperatures = forms.CharField(
        label=gettext_lazy("Temperatures"),
        required=False,
        initial="0.2, 1.0, 1.8",
        help_text=gettext_lazy("Two to four values from 0 to 2, separated by commas."),
    )
    models = ModelNamesField(
        label=gettext_lazy("Models"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Two to four."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read when the form is made: the model list changes while the server runs.
        self.model_labels = dict(catalog.model_choices("").options)
        self.fields["models"].choices = list(self.model_labels.items())

    def clean_prompt(self) -> str:
        text = self.cleaned_data["prompt"]
        if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
            raise forms.ValidationError(
                _("The message is too long: %(count)d characters, the limit is %(limit)d.")
                % {"count": len(text), "limit": settings.CHAT_MAX_MESSAGE_CHARS}
            )
        return text

    def clean_temperatures(self) -> list[float]:
        raw = self.cleaned_data.get("temperatures") or ""
        values: list[float] = []
        for part in raw.replace(";", ",").split(","):
            if not part.strip():
                continue
            try:
                value = float(part.strip())
            except ValueError:
                raise forms.ValidationError(
                    _("“%(value)s” is not a number.") % {"value": part.strip()[:20]}
                ) from None
            if not 0 <= value <= 2:
                raise forms.ValidationError(_("Temperatures go from 0 to 2."))
            if value not in values:
                values.append(value)
        return values

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        low, high = compare.MIN_COLUMNS, compare.MAX_COLUMNS
        if cleaned.get("mode") == self.PERSONAS:
            chosen = list(cleaned.get("personas") or [])
            if not low <= len(chosen) <= high:
                self.add_error(
                    "personas",
                    _("Choose %(min)d to %(max)d personas.") % {"min": low, "max": high},
                )
        elif cleaned.get("mode") == self.MODELS:
            if cleaned.get("persona") is None:
                self.add_error("persona", _("Choose a persona."))
            chosen = cleaned.get("models")
            if chosen is not None and not low <= len(set(chosen)) <= high:
                self.add_error(
                    "models", _("Choose %(min)d to %(max)d models.") % {"min": low, "max": high}
                )
        elif cleaned.get("mode") == self.TEMPERATURES:
            if cleaned.get("persona") is None:
                self.add_error("persona", _("Choose a persona."))
            values = cleaned.get("temperatures")
            if values is not None and not low <= len(values) <= high:
                self.add_error(
                    "temperatures",
                    _("Give %(min)d to %(max)d different temperatures.")
                    % {"min": low, "max": high},
                )
        return cleaned

    def targets(self) -> list[compare.Target]:
        data = self.cleaned_data
        if data["mode"] == self.PERSONAS:
            ordered = sorted(data["personas"], key=lambda p: (p.position, p.name))
            return [compare.Target(persona) for persona in ordered]
        if data["mode"] == self.MODELS:
            names = list(dict.fromkeys(data["models"]))
            return [
                compare.Target(
                    data["persona"], model=name, model_label=self.model_labels.get(name, "")
                )
                for name in names
            ]
        return [compare.Target(data["persona"], t) for t in data["temperatures"]]


def _form_page(request: HttpRequest, form: CompareForm, error: str = "") -> HttpResponse:
    return render(
        request,
        "conversations/compare_form.html",
        {
            "conversation": None,
            "form": form,
            "compare_error": error,
            "chat_config": {"maxMessageChars": settings.CHAT_MAX_MESSAGE_CHARS},
            # Also when a refused POST to compare/start/ shows it: the sidebar comes back here.
            **sidebar_context(request, page=reverse("compare")),
        },
        status=400 if (form.is_bound or error) else 200,
    )


@require_GET
def compare_form(request: HttpRequest) -> HttpResponse:
    personas = list(Persona.objects.active()[: compare.MAX_COLUMNS])
    default = Persona.objects.default()
    form = CompareForm(initial={"personas": personas[:3], "persona": default})
    form.initial["models"] = list(form.model_labels)[:3]
    return _form_page(request, form)


@require_POST
async def start_compare(request: HttpRequest) -> HttpResponse:
    """Start the compare in the server's event loop, then show its columns."""
    user = await request.auser()
    # Made in a thread: the form reads the model list from the database.
    form = await sync_to_async(CompareForm)(request.POST)
    if not await sync_to_async(form.is_valid)():
        return await sync_to_async(_form_page)(request, form)
    try:
        columns = await compare.start_compare(
            user=user, prompt=form.cleaned_data["prompt"], targets=form.targets()
        )
    except ChatError as exc:
        return await sync_to_async(_form_page)(request, form, exc.message)
    query = urlencode([("c", str(column.conversation.pk)) for column in columns])
    return HttpResponseRedirect(f"{reverse('compare_view')}?{query}")


@require_GET
def compare_view(request: HttpRequest) -> HttpResponse:
    """The columns of a compare: the conversations named in `?c=`, in that order."""
    try:
        ids = [UUID(value) for value in request.GET.getlist("c")][: compare.MAX_COLUMNS]
    except ValueError:
        raise Http404("Not a conversation id.") from None
    found = {
        c.pk: c
        for c in Conversation.objects.owned_by(request.user)
        .select_related("persona")
        .filter(pk__in=ids)
    }
    # Another user's conversation is missing, as on every page: the whole compare is.
    if not ids or any(pk not in found for pk in ids):
        raise Http404("No such compare.")
    columns = []
    for pk in ids:
        conversation = found[pk]
        page, _has_older = message_page(conversation)
        columns.append({"conversation": conversation, "messages": page})
    config = {
        "maxMessageChars": settings.CHAT_MAX_MESSAGE_CHARS,
        "columns": [
            {
                "conversationId": str(column["conversation"].pk),
                "socketPath": f"/ws/conversations/{column['conversation'].pk}/",
                "personaEmoji": column["conversation"].persona.emoji
                if column["conversation"].persona
                else "",
            }
            for column in columns
        ],
    }
    return render(
        request,
        "conversations/compare.html",
        {
            "conversation": None,
            "columns": columns,
            "chat_config": config,
            **sidebar_context(request),
        },
    )
