"""The JSON export carries a message's files inside it, within a budget; an import restores
them, checked again as uploads are; the Markdown export lists them."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from conversations import exports, services
from conversations.models import Attachment, Conversation, Message, Role
from tests.files import image_bytes, pdf_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(owner, personas):
    """A question with an image and a PDF, and its answer."""
    from conversations import attachments

    conversation = services.start_conversation(user=owner)
    question = Message.objects.create(conversation=conversation, role=Role.USER, content="See")
    for name, data in (("chart.png", image_bytes(40, 30)), ("paper.pdf", pdf_bytes("Results"))):
        checked = attachments.check_upload(name=name, content_type="", data=data, model=None)
        attachments.store(conversation=conversation, checked=checked, message=question)
    Message.objects.create(conversation=conversation, role=Role.ASSISTANT, content="Seen")
    return conversation


def upload(data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("export.json", data, content_type="application/json")


def test_the_json_export_carries_the_files_and_an_import_restores_them(client, owner, chat):
    document = json.loads(exports.export_json([chat]))
    files = document["conversations"][0]["messages"][0]["attachments"]
    assert [(f["name"], f["kind"]) for f in files] == [("chart.png", "image"), ("paper.pdf", "pdf")]
    original = Attachment.objects.get(name="chart.png")
    assert base64.b64decode(files[0]["data"]) == original.file.read()
    assert "attachments" not in document["conversations"][0]["messages"][1]

    client.force_login(owner)
    response = client.post(
        reverse("import_conversations"), {"file": upload(json.dumps(document).encode())}
    )
    assert response.status_code == 302
    imported = Conversation.objects.exclude(pk=chat.pk).get()
    copies = list(Attachment.objects.filter(conversation=imported))
    assert [(a.name, a.width, a.height) for a in copies] == [
        ("chart.png", 40, 30),
        ("paper.pdf", None, None),
    ]
    assert copies[1].text == "Results" and copies[0].message.content == "See"
    assert copies[0].file.name != original.file.name


def test_past_the_budget_files_are_listed_by_name_and_not_imported(client, owner, chat, settings):
    settings.CHAT_EXPORT_ATTACHMENT_BYTES = Attachment.objects.get(name="chart.png").size
    document = json.loads(exports.export_json([chat]))
    files = document["conversations"][0]["messages"][0]["attachments"]
    assert files[0]["data"] and files[1]["data"] is None and files[1]["name"] == "paper.pdf"
    client.force_login(owner)
    client.post(reverse("import_conversations"), {"file": upload(json.dumps(document).encode())})
    imported = Conversation.objects.exclude(pk=chat.pk).get()
    assert [a.name for a in Attachment.objects.filter(conversation=imported)] == ["chart.png"]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (base64.b64encode(b"not a picture").decode(), "is not a valid image file"),
        ("%%% not base64", "must be base64 text or null."),
    ],
)
def test_an_imported_file_is_checked_as_an_upload_and_refusal_stores_nothing(
    client, owner, chat, data, says
):
    document = json.loads(exports.export_json([chat]))
    document["conversations"][0]["messages"][0]["attachments"][0]["data"] = data
    before = Attachment.objects.count()
    client.force_login(owner)
    response = client.post(
        reverse("import_conversations"), {"file": upload(json.dumps(document).encode())}
    )
    assert response.status_code == 400 and says in response.content.decode()
    assert Conversation.objects.count() == 1 and Attachment.objects.count() == before


def test_the_markdown_export_lists_the_files(client, owner, chat):
    client.force_login(owner)
    response = client.get(reverse("export_conversation", args=[chat.pk, "md"]))
    text = response.content.decode()
    assert "Attached files:" in text
    assert "- chart.png (Image, " in text and "- paper.pdf (PDF, " in text
