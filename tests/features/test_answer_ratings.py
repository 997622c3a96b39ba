"""👍 / 👎 on an answer: the user's rating of their own written answers, saved and shown again,
taken back by pressing it again; the admin counts them per persona and model."""

from __future__ import annotations

import pytest
from channels.layers import get_channel_layer
from django.test import Client
from django.urls import reverse

from conversations import services
from conversations.models import Message, Role, Status
from conversations.protocol import message_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def answered(owner, personas):
    conversation = services.start_conversation(user=owner)
    question = Message.objects.create(conversation=conversation, role=Role.USER, content="Hi")
    answer = Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, content="Hello!", parent=question
    )
    return conversation, question, answer


def rate(client: Client, conversation, message, rating: str):
    url = reverse("rate_answer", args=[conversation.pk, message.pk])
    return client.post(url, {"rating": rating})


def test_an_answer_is_rated_then_the_rating_taken_back(client, owner, answered):
    conversation, _, answer = answered
    client.force_login(owner)

    response = rate(client, conversation, answer, "bad")
    assert response.status_code == 200 and response.json() == {"rating": "bad"}
    answer.refresh_from_db()
    assert answer.rating == "bad"
    assert message_payload(answer)["rating"] == "bad"
    page = client.get(reverse("conversation", args=[conversation.pk])).content.decode()
    assert (
        'data-rating="bad" aria-label="Bad answer" title="Bad answer" aria-pressed="true"' in page
    )

    assert rate(client, conversation, answer, "").json() == {"rating": ""}
    answer.refresh_from_db()
    assert answer.rating == ""


@pytest.mark.parametrize("rating", ["great", "1"])
def test_a_rating_of_another_kind_is_refused(client, owner, answered, rating):
    conversation, _, answer = answered
    client.force_login(owner)
    assert rate(client, conversation, answer, rating).status_code == 400
    answer.refresh_from_db()
    assert answer.rating == ""


def test_only_the_owners_written_answers_can_be_rated(client, owner, outsider, answered):
    conversation, question, answer = answered
    client.force_login(outsider)
    assert rate(client, conversation, answer, "good").status_code == 404
    client.force_login(owner)
    assert rate(client, conversation, question, "good").status_code == 404
    Message.objects.filter(pk=answer.pk).update(status=Status.STREAMING)
    assert rate(client, conversation, answer, "good").status_code == 404
    assert client.get(reverse("rate_answer", args=[conversation.pk, answer.pk])).status_code == 405
    answer.refresh_from_db()
    assert answer.rating == ""


def test_the_admin_counts_each_personas_ratings(admin_client, owner, personas):
    chef = next(p for p in personas if p.name_en == "Chef")
    for rating in ["good", "good", "bad", ""]:
        conversation = services.start_conversation(user=owner, persona=chef)
        Message.objects.create(
            conversation=conversation, role=Role.ASSISTANT, content="Pasta", rating=rating
        )
    page = admin_client.get(reverse("admin:conversations_persona_changelist"))
    rows = page.content.decode()
    assert "👍 2 · 👎 1" in rows
    assert rows.count("👍 0 · 👎 0") == len(personas) - 1


@pytest.mark.usefixtures("isolated_channel_layer")
def test_a_rating_is_saved_when_the_channel_layer_is_down(client, owner, answered, settings):
    """The other tabs are told through the channel layer; with it down the rating is saved
    all the same (they show it at their next load)."""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "tests.conversations.test_reply_endings.FlakyLayer"}
    }
    get_channel_layer().failing = True
    conversation, _, answer = answered
    client.force_login(owner)

    response = rate(client, conversation, answer, "good")
    assert response.status_code == 200 and response.json() == {"rating": "good"}
    answer.refresh_from_db()
    assert answer.rating == "good"
