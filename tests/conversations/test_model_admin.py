"""The admin's model list: refreshed from the server by a button (POST, staff only), edited
in place; a persona's model is chosen from it, and a name it does not offer is refused."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from conversations.models import ChatModel, Persona

pytestmark = pytest.mark.django_db

REFRESH = "admin:conversations_chatmodel_refresh"
LIST = "admin:conversations_chatmodel_changelist"


def persona_form(persona: Persona, **changes) -> dict:
    data = {
        "name": persona.name,
        "name_en": persona.name_en,
        "description": persona.description,
        "description_ko": persona.description_ko,
        "emoji": persona.emoji,
        "system_prompt": persona.system_prompt,
        "example_prompts": persona.example_prompts,
        "example_prompts_ko": persona.example_prompts_ko,
        "model": persona.model,
        "temperature": str(persona.temperature),
        "max_completion_tokens": "",
        "response_format": persona.response_format,
        "top_logprobs": "0",
        "position": str(persona.position),
        "is_active": "on",
        "is_default": "on" if persona.is_default else "",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value != ""}


def test_the_refresh_button_fills_the_list_from_the_server(admin_client, model_server):
    response = admin_client.post(reverse(REFRESH), follow=True)

    assert ChatModel.objects.usable().filter(name="sim-vision", accepts_images=True).exists()
    assert "sim-vision" in response.content.decode()
    assert response.redirect_chain[-1][0] == reverse(LIST)


def test_a_failing_server_gives_an_error_message(admin_client, model_server):
    model_server.config.api_key = "sk-another-key"

    response = admin_client.post(reverse(REFRESH), follow=True)

    page = response.content.decode()
    assert "The model list was not refreshed" in page
    assert "refused the API key" in page
    assert not ChatModel.objects.exists()


def test_the_refresh_is_a_post(admin_client, model_server):
    assert admin_client.get(reverse(REFRESH)).status_code == 405
    assert model_server.config.request_count == 0
    assert not ChatModel.objects.exists()


def test_the_refresh_is_for_staff_only(client, make_user, model_server):
    client.force_login(make_user("plain"))

    response = client.post(reverse(REFRESH))

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not ChatModel.objects.exists()


def test_staff_who_may_not_change_models_cannot_refresh(client, make_user, model_server):
    staff = make_user("staff", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_chatmodel"))
    client.force_login(staff)

    assert client.post(reverse(REFRESH)).status_code == 403
    assert not ChatModel.objects.exists()


def test_the_list_shows_and_edits_every_setting_of_the_admin(admin_client):
    ChatModel.objects.create(name="sim-1")
    view = admin_client.get(reverse(LIST))

    assert view.status_code == 200
    assert view.context["cl"].list_editable == [
        "label",
        "is_enabled",
        "context_window",
        "accepts_images",
        "position",
    ]
    assert "Refresh from the server" in view.content.decode()


def test_the_list_page_asks_the_server_nothing(admin_client, model_server):
    admin_client.get(reverse(LIST))

    assert model_server.config.request_count == 0
    assert not ChatModel.objects.exists()


def test_a_persona_takes_a_model_of_the_list(admin_client, default_persona):
    ChatModel.objects.create(name="sim-1")
    ChatModel.objects.create(name="gpt-4o")
    url = reverse("admin:conversations_persona_change", args=[default_persona.pk])

    response = admin_client.post(url, persona_form(default_persona, model="sim-1"))

    assert response.status_code == 302
    default_persona.refresh_from_db()
    assert default_persona.model == "sim-1"


@pytest.mark.parametrize(
    ("row", "sentence"),
    [
        (None, "does not offer"),
        ({"is_enabled": False}, "switched off"),
        ({"listed": False}, "no longer lists"),
    ],
)
def test_a_persona_refuses_a_model_users_may_not_have(admin_client, default_persona, row, sentence):
    ChatModel.objects.create(name="sim-1")
    if row is not None:
        ChatModel.objects.create(name="gpt-9", **row)
    url = reverse("admin:conversations_persona_change", args=[default_persona.pk])

    response = admin_client.post(url, persona_form(default_persona, model="gpt-9"))

    assert response.status_code == 200
    assert sentence in str(response.context["adminform"].form.errors["model"])
    default_persona.refresh_from_db()
    assert default_persona.model == ""


def test_a_persona_may_keep_the_default_model(admin_client, default_persona):
    ChatModel.objects.create(name="sim-1")
    url = reverse("admin:conversations_persona_change", args=[default_persona.pk])

    response = admin_client.post(url, persona_form(default_persona, temperature="0.5"))

    assert response.status_code == 302


def test_while_the_list_is_empty_any_name_is_accepted(admin_client, default_persona):
    url = reverse("admin:conversations_persona_change", args=[default_persona.pk])

    response = admin_client.post(url, persona_form(default_persona, model="llama3.2"))

    assert response.status_code == 302
    default_persona.refresh_from_db()
    assert default_persona.model == "llama3.2"


def test_a_persona_shows_a_model_that_is_no_longer_available(admin_client, default_persona):
    ChatModel.objects.create(name="sim-1")
    ChatModel.objects.create(name="old-model", listed=False)
    Persona.objects.filter(pk=default_persona.pk).update(model="old-model")
    url = reverse("admin:conversations_persona_change", args=[default_persona.pk])

    page = admin_client.get(url).content.decode()

    assert '<option value="old-model" selected>old-model (not available)</option>' in page
