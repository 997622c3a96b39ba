"""Every page is owned: the owner sees it, another user gets 404, a stranger is sent to log in."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversations import services
from conversations.models import Message, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(owner, personas):
    return services.start_conversation(user=owner)


def test_the_owner_sees_their_conversation(client, owner, conversation):
    client.force_login(owner)
    response = client.get(reverse("conversation", args=[conversation.pk]))
    assert response.status_code == 200
    assert response.context["conversation"] == conversation


def test_another_user_gets_404_for_someone_elses_conversation(client, outsider, conversation):
    client.force_login(outsider)
    response = client.get(reverse("conversation", args=[conversation.pk]))
    assert response.status_code == 404


def test_a_stranger_is_sent_to_log_in(client, conversation):
    url = reverse("conversation", args=[conversation.pk])
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_the_home_page_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


def test_the_home_page_opens_the_newest_conversation(client, owner, personas):
    services.start_conversation(user=owner)
    newest = services.start_conversation(user=owner)
    Message.objects.create(conversation=newest, role=Role.USER, content="Hello")
    client.force_login(owner)
    response = client.get("/")
    assert response.status_code == 302
    assert response.url == reverse("conversation", args=[newest.pk])


def test_the_home_page_offers_a_new_chat_when_there_is_none(client, owner, personas):
    client.force_login(owner)
    response = client.get("/", headers={"accept-language": "en"})
    assert response.status_code == 200
    assert b'aria-label="Conversations"' in response.content
    assert b"New chat" in response.content


def test_the_conversation_list_shows_only_ones_own(client, owner, outsider, personas):
    mine = services.start_conversation(user=owner)
    theirs = services.start_conversation(user=outsider)
    client.force_login(owner)
    response = client.get(reverse("conversation", args=[mine.pk]))
    listed = list(response.context["conversations"])
    assert mine in listed
    assert theirs not in listed
