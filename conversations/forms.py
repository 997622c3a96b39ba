from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import catalog
from .models import RESPONSE_FORMAT_HELP, Conversation, Persona, Preferences, Rating, ResponseFormat


class ModelNameField(forms.CharField):
    """A model of the admin's list, by its name: a select of the usable models (and the
    current value, where it is not one, so the select shows what is set). Every form that sets
    a model uses it: `catalog.check_model` refuses, with a sentence, any name users may not
    have. `default_label`: an empty first option, the server's default model (OPENAI_MODEL).
    `free_text`: a text box instead while the list is empty (no refresh yet), where any name
    is accepted (`catalog`)."""

    def __init__(
        self,
        *,
        current: str = "",
        default_label: str | None = None,
        free_text: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("max_length", 100)
        super().__init__(**kwargs)
        self.validators.append(catalog.check_model)
        self.known = catalog.model_choices(current)
        options = list(self.known.options)
        if default_label is not None:
            options.insert(0, ("", default_label))
        if free_text and self.known.list_is_empty:
            self.widget = forms.TextInput(attrs={"maxlength": "100"})
        else:
            self.widget = forms.Select(choices=options)


def default_model_label() -> str:
    return gettext("Default: %(model)s") % {"model": settings.OPENAI_MODEL}


class ConversationModelForm(forms.Form):
    """The chat header's model picker: which model writes the conversation's next answers."""

    def __init__(self, *args: Any, conversation: Conversation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = conversation.effective_model
        self.fields["model"] = ModelNameField(label=_("Model"), current=current)
        self.initial.setdefault("model", current)

    @property
    def current(self) -> catalog.ModelInfo:
        """The facts of the conversation's model, read with the options."""
        return self.fields["model"].known.current


class PersonaChoiceField(forms.ModelChoiceField):
    """Each option reads "emoji name", in the user's language."""

    def label_from_instance(self, obj: Persona) -> str:
        return f"{obj.emoji} {obj.display_name()}".strip()


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class PickedFilesField(forms.Field):
    """The files picked with a form (none, one or several), as uploaded: each is checked with
    `AttachmentForm` once there is a conversation to check it for."""

    widget = MultipleFileInput

    def clean(self, value: Any) -> list[Any]:
        if not value:
            return []
        return list(value) if isinstance(value, (list, tuple)) else [value]


def plain_newlines(text: str) -> str:
    """Text from a form's box as typed: a browser sends its line breaks as CR LF, a socket's
    frame as LF. Stored one way, a message reads (and counts, and exports) the same."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


class NewConversationForm(forms.Form):
    persona = PersonaChoiceField(
        queryset=Persona.objects.active(),
        label=_("Persona"),
        required=False,
        empty_label=None,
    )
    message = forms.CharField(
        label=_("Message"),
        required=False,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 1}),
    )
    # Files for the first message (the form is multipart), checked as uploads are.
    files = PickedFilesField(label=_("Attach files"), required=False)

    def clean_message(self) -> str:
        return plain_newlines(self.cleaned_data["message"])

    # "Reset": a new conversation with the settings of this one.
    copy_from = forms.UUIDField(required=False, widget=forms.HiddenInput)


class RenameForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)


class PinForm(forms.Form):
    pinned = forms.BooleanField(required=False)


class ArchiveForm(forms.Form):
    archived = forms.BooleanField(required=False)


class ConversationSettingsForm(forms.ModelForm):
    """The settings of one conversation; the model's own `clean` checks JSON mode."""

    json_mode = forms.BooleanField(
        label=_("JSON mode"), required=False, help_text=RESPONSE_FORMAT_HELP
    )

    class Meta:
        model = Conversation
        fields = [
            "system_prompt",
            "temperature",
            "max_completion_tokens",
            "logprobs",
            "top_logprobs",
        ]
        widgets = {
            "system_prompt": forms.Textarea(attrs={"rows": 5}),
            "temperature": forms.NumberInput(
                attrs={"type": "range", "min": "0", "max": "2", "step": "0.1"}
            ),
            "max_completion_tokens": forms.NumberInput(attrs={"min": "1", "placeholder": "—"}),
            "top_logprobs": forms.NumberInput(attrs={"min": "0", "max": "20"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["json_mode"].initial = (
            self.instance.response_format == ResponseFormat.JSON_OBJECT
        )
        self.order_fields(
            ["system_prompt", "temperature", "max_completion_tokens", "json_mode", "logprobs"]
        )

    def clean_system_prompt(self) -> str:
        return plain_newlines(self.cleaned_data["system_prompt"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # Set before the model's own validation runs (in _post_clean), which checks JSON mode.
        self.instance.response_format = (
            ResponseFormat.JSON_OBJECT if cleaned.get("json_mode") else ResponseFormat.TEXT
        )
        return cleaned

    def settings_values(self) -> dict[str, Any]:
        values = {name: self.cleaned_data[name] for name in self.Meta.fields}
        values["response_format"] = self.instance.response_format
        return values


class AttachmentForm(forms.Form):
    """One uploaded file, checked by its content (`conversations.attachments.check_upload`):
    `cleaned_data["file"]` is the `Checked` upload, ready to store."""

    file = forms.FileField(label=_("File"), allow_empty_file=True, max_length=1000)

    def __init__(self, *args: Any, conversation: Conversation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conversation = conversation

    def clean_file(self) -> Any:
        from .attachments import check_upload, size_error

        upload = self.cleaned_data["file"]
        # Refused by its announced size before a byte of it is read.
        if upload.size > settings.CHAT_ATTACHMENT_MAX_BYTES:
            raise size_error(upload.name, upload.size)
        limit = settings.CHAT_ATTACHMENTS_PER_MESSAGE
        if self.conversation.attachments.filter(message=None).count() >= limit:
            raise forms.ValidationError(
                ngettext(
                    "A message can carry at most %(limit)d file.",
                    "A message can carry at most %(limit)d files.",
                    limit,
                )
                % {"limit": limit},
                code="too_many",
            )
        return check_upload(
            name=upload.name,
            content_type=upload.content_type or "",
            data=upload.read(),
            model=self.conversation.effective_model,
        )


class InstructionsForm(forms.ModelForm):
    """A user's custom instructions, sent with every message in every conversation."""

    class Meta:
        model = Preferences
        fields = ["instructions"]
        labels = {
            "instructions": _("What should the assistant know about you, and how should it answer?")
        }
        help_texts = {
            "instructions": _(
                "Sent with every message, in every conversation, after the conversation's "
                "system prompt. For example: I am a backend developer in Seoul; answer in "
                "Korean, briefly, with code in Python."
            )
        }
        widgets = {"instructions": forms.Textarea(attrs={"rows": 8})}

    def clean_instructions(self) -> str:
        return plain_newlines(self.cleaned_data["instructions"]).strip()


class RatingForm(forms.Form):
    rating = forms.ChoiceField(choices=[("", "—"), *Rating.choices], required=False)
