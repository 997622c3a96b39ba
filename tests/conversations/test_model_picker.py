"""The chat header's model picker: a select named Model of the usable models, defaulting to
the conversation's; a choice is checked by the server, saved, and writes the next answers."""

from __future__ import annotations

import re
import uuid

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from conversations import replies, services
from conversations.models import ChatModel, Conversation, Message, Persona, Role

from .chat_client import settle

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def model_list(db):
    ChatModel.objects.create(name="gpt-4o-mini", label="GPT-4o mini", position=1)
    ChatModel.objects.create(name="sim-1", label="Simulator", position=2)
    ChatModel.objects.create(name="sim-vision", label="Simulator vision", accepts_images=True)
    ChatModel.objects.create(name="switched-off", is_enabled=False)
    ChatModel.objects.create(name="gone", listed=False)


@pytest.fixture
def chat(owner, personas, model_list):
    return services.start_conversation(user=owner)


def page(client, conversation) -> str:
    return client.get(reverse("conversation", args=[conversation.pk])).content.decode()


def choose(client, conversation, model: str, **headers):
    url = reverse("conversation_model", args=[conversation.pk])
    return client.post(url, {"model": model}, **headers)


def test_the_header_has_a_select_named_model_of_the_usable_models(client, owner, chat):
    client.force_login(owner)

    html = page(client, chat)

    header = html.split('<header class="chat-header">')[1].split("</header>")[0]
    assert 'aria-label="Model"' in header and '<select name="model"' in header
    assert '<option value="gpt-4o-mini" selected>GPT-4o mini</option>' in header
    assert '<option value="sim-vision">Simulator vision</option>' in header
    assert "switched-off" not in header and "gone" not in header


def test_the_picker_defaults_to_the_personas_model(client, owner, model_list, personas):
    persona = Persona.objects.create(name="Looker", model="sim-vision")
    conversation = services.start_conversation(user=owner, persona=persona)
    client.force_login(owner)

    html = page(client, conversation)

    assert '<option value="sim-vision" selected>' in html
    assert 'data-accepts-images="true"' in html


def test_the_composer_says_whether_the_model_reads_images(client, owner, chat):
    client.force_login(owner)

    assert re.search(
        r'<form class="composer" id="composer" data-accepts-images="false"', page(client, chat)
    )
    choose(client, chat, "sim-vision", **JSON)
    assert re.search(
        r'<form class="composer" id="composer" data-accepts-images="true"', page(client, chat)
    )


def test_a_chosen_model_is_saved_and_said_back(client, owner, chat):
    client.force_login(owner)

    response = choose(client, chat, "sim-vision", **JSON)

    assert response.status_code == 200
    assert response.json() == {
        "message": "The next answer is written by Simulator vision.",
        "model": "sim-vision",
        "label": "Simulator vision",
        "accepts_images": True,
    }
    chat.refresh_from_db()
    assert chat.model == "sim-vision"
    assert '<option value="sim-vision" selected>' in page(client, chat)


@pytest.mark.parametrize(
    ("model", "sentence"),
    [
        ("gpt-9", "does not offer “gpt-9”"),
        ("switched-off", "switched off"),
        ("gone", "no longer lists"),
        ("", "This field is required."),
    ],
)
def test_a_model_users_may_not_have_is_refused(client, owner, chat, model, sentence):
    client.force_login(owner)

    response = choose(client, chat, model, **JSON)

    assert response.status_code == 400
    assert sentence in response.json()["errors"]["model"][0]["message"]
    chat.refresh_from_db()
    assert chat.model == ""


def test_without_javascript_the_form_posts_and_the_page_says_what_happened(client, owner, chat):
    client.force_login(owner)

    saved = choose(client, chat, "sim-1", follow=True)
    refused = choose(client, chat, "gpt-9", follow=True)

    assert "The next answer is written by Simulator." in saved.content.decode()
    assert "does not offer" in refused.content.decode()
    chat.refresh_from_db()
    assert chat.model == "sim-1"


def test_another_users_conversation_is_not_found(client, outsider, chat):
    client.force_login(outsider)

    assert choose(client, chat, "sim-1", **JSON).status_code == 404
    chat.refresh_from_db()
    assert chat.model == ""


def test_a_visitor_who_is_not_logged_in_is_sent_to_log_in(client, chat):
    response = choose(client, chat, "sim-1")

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_picker_only_takes_a_post(client, owner, chat):
    client.force_login(owner)

    assert client.get(reverse("conversation_model", args=[chat.pk])).status_code == 405


def test_the_korean_page_names_the_picker_in_korean(client, owner, chat):
    client.force_login(owner)

    html = client.get(
        reverse("conversation", args=[chat.pk]), HTTP_ACCEPT_LANGUAGE="ko"
    ).content.decode()

    assert 'aria-label="모델"' in html


def test_while_the_list_is_empty_the_picker_shows_the_conversations_model(client, owner, personas):
    conversation = services.start_conversation(user=owner)
    client.force_login(owner)

    html = page(client, conversation)

    assert '<option value="gpt-4o-mini" selected>gpt-4o-mini</option>' in html


@pytest.mark.django_db(transaction=True)
async def test_the_next_answer_is_written_by_the_chosen_model(
    async_client, owner, personas, model_list, model_server, isolated_channel_layer
):
    conversation = await database_sync_to_async(services.start_conversation)(user=owner)
    await database_sync_to_async(async_client.force_login)(owner)

    await async_client.post(
        reverse("conversation_model", args=[conversation.pk]), {"model": "sim-1"}
    )
    await replies.post(
        user=owner, conversation_id=conversation.pk, content="Hello", client_id=uuid.uuid4().hex
    )
    await settle()

    reply = await Message.objects.aget(conversation_id=conversation.pk, role=Role.ASSISTANT)
    assert reply.model == "sim-1" and reply.parameters["model"] == "sim-1"
    assert model_server.config.requests[-1]["model"] == "sim-1"
    assert (await Conversation.objects.aget(pk=conversation.pk)).model == "sim-1"
