"""Search finds words in any version of a message, and its result opens the path that holds
them (the versions on the way chosen, for every tab); another user's message is not found."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conversations import selectors, services
from conversations.models import Message, Role, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def hidden_version(owner, personas):
    """A question answered twice: the answer shown does not hold the word searched for."""
    conversation = services.start_conversation(user=owner)
    question = Message.objects.create(conversation=conversation, role=Role.USER, content="Soup?")
    hidden = Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="Try a gazpacho, cold and red.",
        status=Status.COMPLETE,
        selected_at=timezone.now() - timedelta(days=1),
    )
    Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="Miso soup is quick.",
        status=Status.COMPLETE,
        parent=question,
    )
    return conversation, hidden


def shown(conversation) -> list[str]:
    page, _ = selectors.message_page(conversation)
    return [m.content for m in page]


def test_a_word_in_a_version_not_shown_is_found_and_opens_its_path(client, owner, hidden_version):
    conversation, hidden = hidden_version
    assert "gazpacho" not in " ".join(shown(conversation))
    [result] = selectors.sidebar_conversations(user=owner, query="gazpacho")
    assert result.pk == conversation.pk and result.found_id == hidden.pk

    client.force_login(owner)
    sidebar = client.get(reverse("conversation_list"), {"q": "gazpacho"}).content.decode()
    link = f"{reverse('conversation', args=[conversation.pk])}?message={hidden.pk}"
    assert link in sidebar
    response = client.get(link)
    assert response.status_code == 302
    assert response["Location"].endswith(f"#message-{hidden.pk}")
    assert shown(conversation) == ["Soup?", "Try a gazpacho, cold and red."]
    page = client.get(response["Location"]).content.decode()
    assert 'data-version="1/2"' in page and "gazpacho" in page


def test_another_users_message_is_neither_found_nor_opened(client, outsider, owner, hidden_version):
    conversation, hidden = hidden_version
    assert selectors.sidebar_conversations(user=outsider, query="gazpacho") == []
    client.force_login(outsider)
    link = f"{reverse('conversation', args=[conversation.pk])}?message={hidden.pk}"
    assert client.get(link).status_code == 404
    client.force_login(owner)
    assert (
        client.get(f"{reverse('conversation', args=[conversation.pk])}?message=x").status_code
        == 404
    )
    assert "Miso soup is quick." in shown(conversation)
