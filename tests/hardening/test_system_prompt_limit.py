"""A system prompt is sent with every request of its conversation: one of megabytes costs the
model's server and the database on every message. Its length is capped where one is written:
the conversation's settings, the admin's persona form, an import."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from conversations import exports, services
from conversations.models import Conversation, Persona

pytestmark = pytest.mark.django_db


def settings_form(system_prompt: str) -> dict[str, str]:
    return {"system_prompt": system_prompt, "temperature": "0.7", "top_logprobs": "0"}


@pytest.fixture
def chat(owner, personas) -> Conversation:
    return services.start_conversation(user=owner)


def test_the_default_limit_is_twenty_thousand_characters(settings):
    assert settings.CHAT_MAX_SYSTEM_PROMPT_CHARS == 20_000


def test_the_conversation_settings_refuse_a_system_prompt_over_the_limit(client, owner, chat):
    """Without the cap the settings form stored a system prompt of any length (a browser's
    textarea takes megabytes), sent again with every message of the conversation."""
    client.force_login(owner)
    too_long = "x" * 20_010
    response = client.post(
        reverse("conversation_settings", args=[chat.pk]), settings_form(too_long)
    )
    assert response.status_code == 400
    [error] = response.context["settings_form"].errors["system_prompt"]
    assert "at most 20,000 characters" in error and "20,010" in error
    chat.refresh_from_db()
    assert chat.system_prompt != too_long


def test_a_system_prompt_at_the_limit_is_saved(client, owner, chat):
    """The control: the limit itself is allowed."""
    client.force_login(owner)
    at_the_limit = "x" * 20_000
    response = client.post(
        reverse("conversation_settings", args=[chat.pk]), settings_form(at_the_limit)
    )
    assert response.status_code == 302
    chat.refresh_from_db()
    assert chat.system_prompt == at_the_limit


def test_the_limit_is_read_from_the_setting(client, owner, chat, settings):
    """CHAT_MAX_SYSTEM_PROMPT_CHARS sets it, at run time: nothing of it is in a migration."""
    settings.CHAT_MAX_SYSTEM_PROMPT_CHARS = 100
    client.force_login(owner)
    response = client.post(
        reverse("conversation_settings", args=[chat.pk]), settings_form("y" * 101)
    )
    assert response.status_code == 400
    assert "at most 100 characters" in response.context["settings_form"].errors["system_prompt"][0]


def test_the_admins_persona_form_refuses_a_system_prompt_over_the_limit(
    client, personas, django_user_model
):
    """A persona's prompt becomes every new conversation's: the admin's form has the same
    cap (a staff account is an account too, and a pasted file is easy to mistake)."""
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(admin)
    form = {
        "name": "Long-winded",
        "emoji": "",
        "name_en": "",
        "description": "",
        "description_ko": "",
        "system_prompt": "z" * 20_001,
        "model": "",
        "temperature": "1.0",
        "max_completion_tokens": "",
        "response_format": "text",
        "top_logprobs": "0",
        "is_active": "on",
        "position": "5",
    }
    response = client.post(reverse("admin:conversations_persona_add"), form)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "at most 20,000 characters" in errors["system_prompt"][0]
    assert not Persona.objects.filter(name="Long-winded").exists()

    form["system_prompt"] = "z" * 20_000
    response = client.post(reverse("admin:conversations_persona_add"), form)
    assert response.status_code == 302
    assert Persona.objects.filter(name="Long-winded").exists()


def test_an_import_refuses_a_system_prompt_over_the_limit(client, owner, personas):
    """The file's system prompt is the user's to choose, within the same cap: without it an
    import was a way round the form's limit."""
    document = {
        "format": exports.FORMAT,
        "version": exports.VERSION,
        "conversations": [
            {
                "settings": {"system_prompt": "w" * 20_001},
                "messages": [{"role": "user", "content": "Hello"}],
            }
        ],
    }
    client.force_login(owner)
    upload = SimpleUploadedFile("export.json", json.dumps(document).encode(), "application/json")
    response = client.post(reverse("import_conversations"), {"file": upload})
    assert response.status_code == 400
    sentence = response.context["import_error"]
    assert sentence.startswith("This file cannot be imported: conversations[0].settings")
    assert "at most 20,000 characters" in sentence
    assert not Conversation.objects.exists()
