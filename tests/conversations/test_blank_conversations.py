"""A chat started with no message yet is blank: `/` comes back to it as the new-chat page,
New chat and Reset take it over instead of making another, and the sidebar lists it only while
it is open. So nobody collects empty "New chat" entries."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversations import services
from conversations.models import Conversation, Message, Persona, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def used(owner, personas):
    """A conversation with a message in it."""
    conversation = services.start_conversation(user=owner)
    Message.objects.create(conversation=conversation, role=Role.USER, content="Hello")
    return conversation


def reset(client, conversation):
    return client.post(reverse("new_conversation"), {"copy_from": str(conversation.pk)})


def listed(response) -> list:
    return [c.pk for c in response.context["conversations"]]


def test_the_home_page_opens_a_new_chat_when_the_newest_conversation_is_blank(client, owner, used):
    blank = services.start_conversation(user=owner)
    client.force_login(owner)
    response = client.get("/")
    assert response.status_code == 200
    assert response.templates[0].name == "conversations/new_chat.html"
    assert blank.pk not in listed(response)
    assert used.pk in listed(response)


def test_the_home_page_still_opens_the_newest_conversation_that_has_messages(client, owner, used):
    client.force_login(owner)
    response = client.get("/")
    assert response.status_code == 302
    assert response.url == reverse("conversation", args=[used.pk])


def test_starting_a_chat_takes_over_the_blank_conversation(client, owner, used):
    blank = services.start_conversation(user=owner)
    chef = Persona.objects.get(name_en="Chef")
    client.force_login(owner)
    response = client.post(reverse("new_conversation"), {"persona": chef.pk, "message": "Soup?"})
    assert response.url == reverse("conversation", args=[blank.pk])
    assert Conversation.objects.filter(user=owner).count() == 2
    blank.refresh_from_db()
    assert blank.persona == chef
    assert blank.settings_dict() == chef.settings_dict()


def test_reset_twice_leaves_one_blank_conversation(client, owner, used):
    client.force_login(owner)
    services.update_conversation_settings(
        user=owner, conversation_id=used.pk, values={"temperature": 1.7}
    )
    first = reset(client, used)
    second = reset(client, used)
    assert first.url == second.url
    blank = Conversation.objects.exclude(pk=used.pk).get(user=owner)
    assert blank.temperature == 1.7
    # Reset in the blank conversation itself makes no other one either.
    reset(client, blank)
    assert Conversation.objects.filter(user=owner).count() == 2


def test_reset_leaves_no_empty_new_chat_in_the_sidebar(client, owner, used):
    client.force_login(owner)
    reset(client, used)
    blank = Conversation.objects.exclude(pk=used.pk).get(user=owner)
    # While it is open it is listed, as the chat one is in.
    assert blank.pk in listed(client.get(reverse("conversation", args=[blank.pk])))
    # Back in the other conversation, with nothing written, it is not.
    assert listed(client.get(reverse("conversation", args=[used.pk]))) == [used.pk]
    fragment = client.get(reverse("conversation_list"), {"current": str(used.pk)})
    assert listed(fragment) == [used.pk]


def test_a_conversation_with_a_message_renamed_or_pinned_is_never_taken_over(client, owner, used):
    renamed = services.start_conversation(user=owner)
    services.rename_conversation(user=owner, conversation_id=renamed.pk, title="Ideas")
    pinned = services.start_conversation(user=owner)
    services.set_pinned(user=owner, conversation_id=pinned.pk, pinned=True)
    client.force_login(owner)
    response = client.post(reverse("new_conversation"), {"message": "Hi"})
    created = Conversation.objects.filter(user=owner).exclude(
        pk__in=[used.pk, renamed.pk, pinned.pk]
    )
    assert response.url == reverse("conversation", args=[created.get().pk])
    assert {used.pk, renamed.pk, pinned.pk} <= set(listed(client.get(response.url)))


def test_another_users_blank_conversation_is_not_taken_over(client, owner, outsider, personas):
    theirs = services.start_conversation(user=outsider)
    client.force_login(owner)
    client.post(reverse("new_conversation"), {"message": "Hi"})
    assert Conversation.objects.get(pk=theirs.pk).user == outsider
    assert Conversation.objects.filter(user=owner).count() == 1
