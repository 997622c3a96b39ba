"""An attachment's file is served to its conversation's owner only; another user, or nobody
logged in, gets what a missing page gets. Unsent uploads can be taken back."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from conversations.models import Attachment
from tests.files import image_bytes, pdf_bytes

pytestmark = pytest.mark.django_db


def upload(client, conversation, name: str, data: bytes) -> dict:
    url = reverse("upload_attachment", args=[conversation.pk])
    response = client.post(url, {"file": SimpleUploadedFile(name, data)})
    assert response.status_code == 201
    return response.json()


def test_the_owner_gets_the_image(client, owner, conversation):
    client.force_login(owner)
    body = upload(client, conversation, "a.png", image_bytes())
    response = client.get(body["url"])
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == Attachment.objects.get().file.read()
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_text_file_or_pdf_is_downloaded_not_shown(client, owner, conversation):
    client.force_login(owner)
    body = upload(client, conversation, "page.html", b"<script>alert(1)</script>")
    response = client.get(body["url"])
    assert response["Content-Type"].startswith("text/plain")
    assert response["Content-Disposition"].startswith("attachment;")
    body = upload(client, conversation, "paper.pdf", pdf_bytes("Hello"))
    assert client.get(body["url"])["Content-Disposition"].startswith("attachment;")


def test_another_user_gets_404(client, owner, outsider, conversation):
    client.force_login(owner)
    body = upload(client, conversation, "a.png", image_bytes())
    client.force_login(outsider)
    assert client.get(body["url"]).status_code == 404
    discard = reverse("discard_attachment", args=[conversation.pk, body["id"]])
    assert client.post(discard).status_code == 404
    client.logout()
    assert client.get(body["url"]).status_code == 302
    assert Attachment.objects.count() == 1


def test_the_address_must_name_the_attachments_own_conversation(client, owner, conversation):
    from conversations import services

    client.force_login(owner)
    body = upload(client, conversation, "a.png", image_bytes())
    other = services.start_conversation(user=owner)
    url = reverse("attachment_file", args=[other.pk, body["id"]])
    assert client.get(url).status_code == 404


def test_an_unsent_upload_can_be_taken_back_with_its_file(
    client, owner, conversation, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    body = upload(client, conversation, "a.png", image_bytes())
    attachment = Attachment.objects.get()
    storage, name = attachment.file.storage, attachment.file.name
    # The file goes once the row's delete is committed.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("discard_attachment", args=[conversation.pk, body["id"]]))
    assert response.status_code == 204
    assert not Attachment.objects.exists() and not storage.exists(name)


def test_the_page_shows_a_messages_files_and_what_the_model_reads(client, owner, conversation):
    from conversations.models import ChatModel, Message, Role

    client.force_login(owner)
    body = upload(client, conversation, "chart.png", image_bytes(40, 30))
    question = Message.objects.create(conversation=conversation, role=Role.USER, content="See")
    Attachment.objects.filter(pk=body["id"]).update(message=question)
    page = client.get(reverse("conversation", args=[conversation.pk])).content.decode()
    assert f'<img src="{body["url"]}" alt="chart.png" width="40" height="30"' in page
    assert f'<a href="{body["url"]}" target="_blank"' in page
    assert 'data-accepts-images="false"' in page
    ChatModel.objects.create(name=conversation.effective_model, accepts_images=True)
    page = client.get(reverse("conversation", args=[conversation.pk])).content.decode()
    assert 'data-accepts-images="true"' in page
