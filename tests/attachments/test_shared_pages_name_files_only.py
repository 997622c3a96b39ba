"""A share link's page names a message's files and never serves them to a visitor."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from conversations import services, sharing
from conversations.models import Attachment, Message, Role

pytestmark = pytest.mark.django_db


def test_the_shared_page_lists_the_names_only(client, owner, personas):
    conversation = services.start_conversation(user=owner)
    question = Message.objects.create(conversation=conversation, role=Role.USER, content="See")
    Message.objects.create(conversation=conversation, role=Role.ASSISTANT, content="Seen")
    attachment = Attachment(
        conversation=conversation,
        message=question,
        kind="text",
        name="secret-plan.txt",
        content_type="text/plain",
        size=6,
        text="secret",
    )
    attachment.file.save("x.txt", ContentFile(b"secret"))
    link = sharing.share_conversation(user=owner, conversation_id=conversation.pk)
    page = client.get(reverse("shared", args=[link.token])).content.decode()
    assert "secret-plan.txt" in page
    file_url = reverse("attachment_file", args=[conversation.pk, attachment.pk])
    assert file_url not in page
    assert client.get(file_url).status_code == 302  # to the login page
