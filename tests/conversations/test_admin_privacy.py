"""CHAT_ADMIN_READS_MESSAGES: off, the admin shows other users' conversations by title and
usage only: no message, no system prompt, no search in the messages, no export of them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversations import services
from conversations.models import Message, Role, Status
from tests.features.ledger import ledger_reply

pytestmark = pytest.mark.django_db

SECRET = "my private diagnosis"
PROMPT = "You are my confidential therapist"


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(admin)
    return client


@pytest.fixture
def conversation(owner, personas):
    conversation = services.start_conversation(user=owner, overrides={"system_prompt": PROMPT})
    services.rename_conversation(user=owner, conversation_id=conversation.pk, title="Checkup")
    Message.objects.create(conversation=conversation, role=Role.USER, content=SECRET)
    reply = ledger_reply(conversation, 1200, 34)
    Message.objects.filter(pk=reply.pk).update(content=f"About {SECRET}", status=Status.COMPLETE)
    return conversation


def pages(admin_client, conversation) -> tuple[str, str]:
    change = admin_client.get(
        reverse("admin:conversations_conversation_change", args=[conversation.pk])
    )
    changelist = admin_client.get(reverse("admin:conversations_conversation_changelist"))
    assert change.status_code == changelist.status_code == 200
    return change.content.decode(), changelist.content.decode()


def test_by_default_the_admin_reads_the_messages(admin_client, conversation):
    change, changelist = pages(admin_client, conversation)
    assert SECRET in change and PROMPT in change
    assert "export_json" in changelist


def test_turned_off_the_admin_shows_titles_and_usage_but_no_message(
    admin_client, conversation, settings
):
    settings.CHAT_ADMIN_READS_MESSAGES = False
    change, changelist = pages(admin_client, conversation)
    assert SECRET not in change and PROMPT not in change
    assert "Checkup" in change and "1200 + 34" in change  # the title and each reply's tokens
    assert "Checkup" in changelist and ">1234<" in changelist  # and the total
    assert "export_json" not in changelist and "export_markdown" not in changelist
    # Searching the messages would tell what they say.
    found = admin_client.get(
        reverse("admin:conversations_conversation_changelist"), {"q": "diagnosis"}
    )
    assert found.context["cl"].result_count == 0


def test_turned_off_an_export_action_posted_anyway_exports_nothing(
    admin_client, conversation, settings
):
    settings.CHAT_ADMIN_READS_MESSAGES = False
    response = admin_client.post(
        reverse("admin:conversations_conversation_changelist"),
        {"action": "export_json", "_selected_action": [str(conversation.pk)]},
    )
    assert SECRET.encode() not in response.content
