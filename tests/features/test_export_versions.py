"""Exports and imports carry the whole tree: every version, each message's parent, the path
shown. An export made before versions existed (no parents) imports as one path; the Markdown
export writes the path the conversation shows."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from conversations import selectors, services
from conversations.models import Conversation, Message, Role, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def forked(owner, personas):
    """Hi → two answers (the first one shown), and a follow-up under the first."""
    conversation = services.start_conversation(user=owner)
    services.rename_conversation(user=owner, conversation_id=conversation.pk, title="Forked")
    hi = Message.objects.create(conversation=conversation, role=Role.USER, content="Hi")
    kept = Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, content="Hello!", status=Status.COMPLETE
    )
    Message.objects.create(conversation=conversation, role=Role.USER, content="How are you?")
    Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, content="Fine.", status=Status.COMPLETE
    )
    Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="Hey there, a second version.",
        status=Status.COMPLETE,
        parent=hi,
        selected_at=timezone.now() - timedelta(days=1),
    )
    assert path_of(conversation) == ["Hi", "Hello!", "How are you?", "Fine."]
    assert kept.pk
    return conversation


def path_of(conversation) -> list[str]:
    page, _ = selectors.message_page(conversation)
    return [m.content for m in page]


def upload(data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("export.json", data, content_type="application/json")


def imported(client, owner, data: bytes) -> Conversation:
    before = set(Conversation.objects.values_list("pk", flat=True))
    response = client.post(reverse("import_conversations"), {"file": upload(data)})
    assert response.status_code == 302, response.content[:500]
    return Conversation.objects.exclude(pk__in=before).get(user=owner)


def test_the_json_export_carries_every_version_and_imports_the_same_tree(client, owner, forked):
    client.force_login(owner)
    data = client.get(reverse("export_conversation", args=[forked.pk, "json"])).content
    messages = json.loads(data)["conversations"][0]["messages"]
    assert [(m["content"], m["parent"]) for m in messages] == [
        ("Hi", None),
        ("Hello!", 0),
        ("How are you?", 1),
        ("Fine.", 2),
        ("Hey there, a second version.", 0),
    ]

    copy = imported(client, owner, data)
    assert path_of(copy) == ["Hi", "Hello!", "How are you?", "Fine."]
    page, _ = selectors.message_page(copy)
    assert (page[1].version, page[1].versions) == (1, 2)
    assert copy.messages.count() == 5


def test_an_export_from_before_versions_imports_as_one_path(client, owner, forked):
    client.force_login(owner)
    document = json.loads(
        client.get(reverse("export_conversation", args=[forked.pk, "json"])).content
    )
    for message in document["conversations"][0]["messages"]:
        del message["parent"], message["selected_at"]
    copy = imported(client, owner, json.dumps(document).encode())
    assert path_of(copy) == [
        "Hi",
        "Hello!",
        "How are you?",
        "Fine.",
        "Hey there, a second version.",
    ]
    stored = list(copy.messages.order_by("id"))
    assert [m.parent_id for m in stored] == [None, *[m.pk for m in stored[:-1]]]


@pytest.mark.parametrize("parent", [4, 9, -1, "0", True])
def test_a_parent_that_is_not_an_earlier_message_is_refused(client, owner, forked, parent):
    client.force_login(owner)
    document = json.loads(
        client.get(reverse("export_conversation", args=[forked.pk, "json"])).content
    )
    document["conversations"][0]["messages"][2]["parent"] = parent
    count = Message.objects.count()
    response = client.post(
        reverse("import_conversations"),
        {"file": upload(json.dumps(document).encode())},
        follow=True,
    )
    assert "messages[2].parent" in response.content.decode()
    assert Message.objects.count() == count


def test_the_markdown_export_writes_the_path_shown(client, owner, forked):
    client.force_login(owner)
    text = client.get(reverse("export_conversation", args=[forked.pk, "md"])).content.decode()
    assert "How are you?" in text and "Fine." in text
    assert "second version" not in text
