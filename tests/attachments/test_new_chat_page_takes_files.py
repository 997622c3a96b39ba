"""The new-chat page takes files with its first message: posted with the form (multipart), each
is checked as an upload is and stored unsent, and the conversation page's socket sends them
with the message it was handed. A refused file brings the page back with the sentence and the
message, and nothing stays stored."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from conversations.models import Attachment, ChatModel, Conversation, Persona
from tests.conversations.chat_client import ChatSocket
from tests.files import image_bytes, pdf_bytes, png_bomb

pytestmark = [pytest.mark.django_db(transaction=True)]


def reads_images(persona: Persona, accepts: bool = True) -> None:
    ChatModel.objects.update_or_create(
        name=persona.effective_model, defaults={"accepts_images": accepts}
    )


def start_chat(client: Client, persona: Persona, message: str, *files: tuple[str, bytes, str]):
    uploads = [SimpleUploadedFile(name, data, content_type=kind) for name, data, kind in files]
    return client.post(
        reverse("new_conversation"), {"persona": persona.pk, "message": message, "files": uploads}
    )


def stored_files(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "media").rglob("*") if p.is_file())


def pending_frame(client: Client, conversation: Conversation) -> dict:
    """The frame the conversation page's script sends first (static/js/chat.js), from what the
    page hands it."""
    page = client.get(reverse("conversation", args=[conversation.pk]))
    pending = page.context["chat_config"]["pending"]
    # As the page carries it: the JSON of #chat-config.
    assert json.dumps(pending["attachments"]) in page.content.decode()
    return {
        "type": "message.send",
        "client_id": pending["client_id"],
        "content": pending["content"],
        "attachments": pending["attachments"],
    }


@database_sync_to_async
def post_new_chat(user, persona):
    client = Client()
    client.force_login(user)
    reads_images(persona)
    response = start_chat(
        client,
        persona,
        "What is in these?",
        ("screenshot.png", image_bytes(320, 200), "image/png"),
        ("report.pdf", pdf_bytes("Revenue grew 12 percent"), "application/pdf"),
        ("notes.md", b"# Meeting notes\nSecond line", "text/markdown"),
    )
    assert response.status_code == 302, response.content
    conversation = Conversation.objects.get(user=user)
    unsent = list(conversation.attachments.filter(message=None).order_by("pk"))
    return conversation, unsent, pending_frame(client, conversation)


async def test_the_first_message_carries_the_files_picked_on_the_new_chat_page(
    owner, default_persona, model_server
):
    conversation, unsent, frame = await post_new_chat(owner, default_persona)
    assert [a.name for a in unsent] == ["screenshot.png", "report.pdf", "notes.md"]
    assert frame["attachments"] == [a.pk for a in unsent]
    assert frame["content"] == "What is in these?"
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.send(frame)
        question = (await socket.until("message.created"))["message"]
        answer = (await socket.until("reply.ended"))["message"]
    assert [a["name"] for a in question["attachments"]] == [
        "screenshot.png",
        "report.pdf",
        "notes.md",
    ]
    assert "Images: 1 (320×200)" in answer["content"]
    assert "From «report.pdf»: «Revenue grew 12 percent»" in answer["content"]
    assert "From «notes.md»: «# Meeting notes»" in answer["content"]
    linked = await database_sync_to_async(list)(
        Attachment.objects.order_by("pk").values_list("message_id", flat=True)
    )
    assert linked == [question["id"]] * 3


def test_the_conversation_page_hands_over_the_files_once_and_shows_them(
    client, owner, default_persona
):
    client.force_login(owner)
    response = start_chat(client, default_persona, "", ("a.txt", b"Alpha", "text/plain"))
    conversation = Conversation.objects.get(user=owner)
    attachment = conversation.attachments.get()
    assert client.session[f"pending:{conversation.pk}"]["attachments"] == [attachment.pk]
    pending = client.get(response.url).context["chat_config"]["pending"]
    # A file alone is a message; the composer shows it until the message is stored.
    assert pending["content"] == "" and pending["attachments"] == [attachment.pk]
    assert [(f["id"], f["name"], f["kind"]) for f in pending["files"]] == [
        (attachment.pk, "a.txt", "text")
    ]
    assert client.get(response.url).context["chat_config"]["pending"] is None


@pytest.mark.parametrize(
    ("bad", "sentence"),
    [
        (
            ("notes.txt", b"\x00\x01binary\xff", "text/plain"),
            "notes.txt is not a text file: it is not UTF-8 text.",
        ),
        (
            ("small.png", png_bomb(), "image/png"),
            "small.png is refused: its dimensions are too large",
        ),
        (
            ("tool.exe", b"MZ\x90\x00\x03", "application/octet-stream"),
            "tool.exe is not a supported",
        ),
    ],
)
def test_a_refused_file_brings_the_page_back_and_nothing_is_stored(
    client, owner, default_persona, tmp_path, bad, sentence
):
    client.force_login(owner)
    reads_images(default_persona)
    response = start_chat(
        client,
        default_persona,
        "Keep this text",
        ("first.md", b"# Fine", "text/markdown"),
        ("second.png", image_bytes(), "image/png"),
        bad,
    )
    assert response.status_code == 200
    assert response.context["form"].errors["files"][0].startswith(sentence)
    page = response.content.decode()
    assert sentence in page
    assert ">Keep this text</textarea>" in page
    assert not Attachment.objects.exists()
    assert stored_files(tmp_path) == []
    conversation = Conversation.objects.get(user=owner)
    assert f"pending:{conversation.pk}" not in client.session
    assert not conversation.messages.exists()


def test_an_image_for_a_persona_whose_model_reads_none_is_refused(
    client, owner, default_persona, tmp_path
):
    client.force_login(owner)
    reads_images(default_persona, accepts=False)
    response = start_chat(
        client,
        default_persona,
        "Look",
        ("notes.txt", b"Fine", "text/plain"),
        ("photo.png", image_bytes(), "image/png"),
    )
    assert response.status_code == 200
    assert (
        "This persona&#x27;s model does not read images. Remove the image, or pick a persona "
        "whose model accepts images."
    ) in response.content.decode()
    assert not Attachment.objects.exists() and stored_files(tmp_path) == []


def test_more_files_than_a_message_carries_are_refused(
    client, owner, default_persona, settings, tmp_path
):
    settings.CHAT_ATTACHMENTS_PER_MESSAGE = 2
    client.force_login(owner)
    files = [(f"{n}.txt", b"text", "text/plain") for n in range(3)]
    response = start_chat(client, default_persona, "Three", *files)
    assert response.status_code == 200
    assert "A message can carry at most 2 files." in response.content.decode()
    assert not Attachment.objects.exists() and stored_files(tmp_path) == []


def test_a_blank_conversations_forgotten_uploads_do_not_count(
    client, owner, default_persona, settings
):
    """A blank conversation taken over may hold an upload a chat composer left unsent."""
    client.force_login(owner)
    start_chat(client, default_persona, "")  # a blank conversation, with no message
    blank = Conversation.objects.get(user=owner)
    upload = reverse("upload_attachment", args=[blank.pk])
    client.post(upload, {"file": SimpleUploadedFile("left.txt", b"left behind")})
    settings.CHAT_ATTACHMENTS_PER_MESSAGE = 1
    response = start_chat(client, default_persona, "Hi", ("new.txt", b"new", "text/plain"))
    assert response.status_code == 302
    assert Conversation.objects.get(user=owner).pk == blank.pk
    assert list(Attachment.objects.values_list("name", flat=True)) == ["new.txt"]


def test_the_new_chat_page_is_a_multipart_form_that_knows_which_personas_read_images(
    client, owner, personas
):
    client.force_login(owner)
    chef = next(p for p in personas if p.name_en == "Chef")
    chef.model = "sim-vision"
    chef.save()
    ChatModel.objects.create(name="sim-vision", accepts_images=True)
    page = client.get(reverse("new_conversation")).content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert '<input type="file" name="files" id="attach-input"' in page
    # The default persona is chosen: the composer starts with its model's answer.
    assert 'id="new-chat-form" data-accepts-images="false"' in page
    for persona in personas:
        accepts = "true" if persona == chef else "false"
        assert f'data-persona="{persona.pk}" data-accepts-images="{accepts}"' in page


def test_the_pages_script_gets_the_conversations_address_or_the_refusal_as_json(
    owner, default_persona
):
    client = Client()
    client.force_login(owner)
    post = {"persona": default_persona.pk, "message": "Read these"}
    refused = client.post(
        reverse("new_conversation"),
        {
            **post,
            "files": [
                SimpleUploadedFile("plan.md", b"# The plan", content_type="text/markdown"),
                SimpleUploadedFile("notes.txt", b"\x00\x01binary\xff", content_type="text/plain"),
            ],
        },
        headers={"Accept": "application/json"},
    )
    assert refused.status_code == 400
    assert refused.json()["errors"]["files"][0]["message"] == (
        "notes.txt is not a text file: it is not UTF-8 text."
    )
    assert not Attachment.objects.exists()

    started = client.post(
        reverse("new_conversation"),
        {**post, "files": [SimpleUploadedFile("plan.md", b"# The plan", "text/markdown")]},
        headers={"Accept": "application/json"},
    )
    assert started.status_code == 200
    conversation = Conversation.objects.get(user=owner)
    assert started.json() == {"url": reverse("conversation", args=[conversation.pk])}
    frame = pending_frame(client, conversation)
    assert frame["content"] == "Read these"
    assert len(frame["attachments"]) == 1
