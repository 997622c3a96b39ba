from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from .models import Persona


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        fields = ("username",)


class NewConversationForm(forms.Form):
    persona = forms.ModelChoiceField(
        queryset=Persona.objects.active(),
        label=_("Persona"),
        required=False,
    )
