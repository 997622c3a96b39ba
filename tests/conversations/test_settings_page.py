"""The settings form: saved in place by the page (JSON), and without JavaScript a refused form
leaves an address that opens again."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversations import services
from conversations.models import ResponseFormat

pytestmark = pytest.mark.django_db

JSON = {"Accept": "application/json"}


@pytest.fixture
def conversation(owner, personas):
    return services.start_conversation(user=owner)


def settings_url(conversation) -> str:
    return reverse("conversation_settings", args=[conversation.pk])


def data(**overrides):
    values = {"system_prompt": "Be brief.", "temperature": "0.4", "top_logprobs": "0"}
    values.update(overrides)
    return values


def test_the_settings_address_opens_the_conversation_with_its_settings(client, owner, conversation):
    client.force_login(owner)
    response = client.get(settings_url(conversation))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="settings-panel"' in html
    assert 'id="settings-panel" aria-labelledby="settings-heading" hidden' not in html


def test_a_refused_form_is_shown_where_a_reload_finds_it_again(client, owner, conversation):
    client.force_login(owner)
    refused = client.post(settings_url(conversation), data(top_logprobs="3"))
    assert refused.status_code == 400
    assert "Turn on token confidence" in refused.content.decode()
    assert client.get(settings_url(conversation)).status_code == 200
    # The sidebar on that page goes back to the conversation, not to the form's address.
    page = reverse("conversation", args=[conversation.pk])
    assert refused.context["list_next"] == page
    assert refused.context["search_action"] == page


def test_the_page_saves_by_fetch_and_reads_json(client, owner, conversation):
    client.force_login(owner)
    response = client.post(settings_url(conversation), data(json_mode="on"), headers=JSON)
    assert response.status_code == 200
    assert response.json() == {"message": "Settings saved. The next answer uses them."}
    conversation.refresh_from_db()
    assert conversation.temperature == 0.4
    assert conversation.response_format == ResponseFormat.JSON_OBJECT


def test_a_refused_fetch_gets_the_errors_of_each_field(client, owner, conversation):
    client.force_login(owner)
    before = conversation.settings_dict()
    response = client.post(
        settings_url(conversation), data(temperature="3", top_logprobs="3"), headers=JSON
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"temperature", "top_logprobs"}
    assert errors["top_logprobs"][0]["message"] == "Turn on token confidence to show alternatives."
    conversation.refresh_from_db()
    assert conversation.settings_dict() == before


def test_another_users_settings_address_is_404(client, outsider, conversation):
    client.force_login(outsider)
    assert client.get(settings_url(conversation)).status_code == 404
    assert client.post(settings_url(conversation), data(), headers=JSON).status_code == 404


def test_a_system_prompt_from_the_form_is_stored_with_plain_line_breaks(
    client, owner, conversation
):
    """A browser sends a text box's line breaks as CR LF; a frame on the socket as LF."""
    client.force_login(owner)
    prompt = "Be brief.\r\nAnswer in Korean.\rNo lists."
    client.post(settings_url(conversation), data(system_prompt=prompt), headers=JSON)
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Be brief.\nAnswer in Korean.\nNo lists."


def test_the_first_message_from_the_new_chat_form_has_plain_line_breaks(client, owner, personas):
    client.force_login(owner)
    response = client.post(reverse("new_conversation"), {"message": "Two lines:\r\nsecond"})
    conversation_id = response.url.strip("/").split("/")[-1]
    pending = client.session[f"pending:{conversation_id}"]
    assert pending["content"] == "Two lines:\nsecond"
