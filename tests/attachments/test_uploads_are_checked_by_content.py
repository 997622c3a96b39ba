"""An upload is judged by its bytes: what it claims to be does not count, bad input is refused
with a sentence and nothing is stored."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from conversations.models import Attachment, ChatModel
from tests.files import image_bytes, pdf_bytes, png_bomb

pytestmark = pytest.mark.django_db


def upload(client, conversation, name: str, data: bytes, content_type: str = ""):
    url = reverse("upload_attachment", args=[conversation.pk])
    file = SimpleUploadedFile(name, data, content_type=content_type or "application/octet-stream")
    return client.post(url, {"file": file})


def test_a_png_is_stored_and_described(client, owner, conversation):
    client.force_login(owner)
    response = upload(client, conversation, "screenshot.png", image_bytes(64, 48), "image/png")
    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["name"], body["width"], body["height"]) == (
        "image",
        "screenshot.png",
        64,
        48,
    )
    attachment = Attachment.objects.get(pk=body["id"])
    assert attachment.message is None and attachment.content_type == "image/png"
    assert attachment.file.storage.exists(attachment.file.name)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_each_image_format_is_accepted_whatever_its_name(client, owner, conversation, fmt):
    client.force_login(owner)
    response = upload(client, conversation, "picture", image_bytes(fmt=fmt))
    assert response.status_code == 201, response.content
    assert Attachment.objects.get().content_type == f"image/{fmt.lower()}"


def test_exif_and_gps_are_stripped(client, owner, conversation):
    client.force_login(owner)
    original = image_bytes(fmt="JPEG", exif_gps=True)
    assert b"SecretCamera" in original
    assert upload(client, conversation, "photo.jpg", original, "image/jpeg").status_code == 201
    stored = Attachment.objects.get().file.read()
    assert b"SecretCamera" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert not image.getexif()


def test_a_large_image_is_scaled_to_what_the_model_reads(client, owner, conversation):
    client.force_login(owner)
    response = upload(client, conversation, "big.png", image_bytes(4000, 1000))
    assert (response.json()["width"], response.json()["height"]) == (2048, 512)
    response = upload(client, conversation, "tall.png", image_bytes(1000, 2000))
    assert (response.json()["width"], response.json()["height"]) == (768, 1536)
    with Image.open(Attachment.objects.last().file) as image:
        assert image.size == (768, 1536)


def test_an_image_bomb_is_refused_before_decoding(client, owner, conversation):
    client.force_login(owner)
    bomb = png_bomb()
    assert len(bomb) < 50_000
    response = upload(client, conversation, "small.png", bomb, "image/png")
    assert response.status_code == 400
    assert "dimensions are too large" in response.json()["error"]
    assert not Attachment.objects.exists()


@pytest.mark.parametrize(
    ("name", "data", "content_type", "says"),
    [
        ("photo.png", b"this is not a picture", "image/png", "is not a valid image file"),
        ("paper.pdf", b"plain words", "application/pdf", "is not a valid PDF file"),
        ("broken.pdf", b"%PDF-1.4 nothing else", "application/pdf", "is not a valid PDF"),
        ("notes.txt", b"\x00\x01\x02binary\xff", "text/plain", "is not a text file"),
        (
            "archive.zip",
            b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
            "application/zip",
            "is not a supported",
        ),
        ("picture.bmp", None, "image/bmp", "is not a supported"),
        ("empty.txt", b"", "text/plain", "is empty"),
    ],
)
def test_a_file_that_is_not_what_it_claims_or_unsupported_is_refused(
    client, owner, conversation, name, data, content_type, says
):
    client.force_login(owner)
    if data is None:
        data = image_bytes(fmt="BMP")
    response = upload(client, conversation, name, data, content_type)
    assert response.status_code == 400
    assert says in response.json()["error"] and name in response.json()["error"]
    assert not Attachment.objects.exists()


def test_a_file_over_the_size_limit_is_refused(client, owner, conversation, settings):
    settings.CHAT_ATTACHMENT_MAX_BYTES = 1000
    client.force_login(owner)
    response = upload(client, conversation, "notes.txt", b"a" * 1001, "text/plain")
    assert response.status_code == 400
    assert "too large" in response.json()["error"] and "1000" in response.json()["error"]
    assert not Attachment.objects.exists()


def test_no_more_unsent_files_than_a_message_carries(client, owner, conversation, settings):
    settings.CHAT_ATTACHMENTS_PER_MESSAGE = 2
    client.force_login(owner)
    for number in range(2):
        assert upload(client, conversation, f"{number}.txt", b"text").status_code == 201
    response = upload(client, conversation, "third.txt", b"text")
    assert response.status_code == 400
    assert response.json()["error"] == "A message can carry at most 2 files."
    assert Attachment.objects.count() == 2


def test_text_files_keep_their_text(client, owner, conversation):
    client.force_login(owner)
    for name, data in [
        ("notes.md", "# Plan\n\n- 한국어도 된다".encode()),
        ("data.csv", b"a,b\n1,2\n"),
        ("config.json", b'{"key": 1}'),
        ("script.py", b"print('hi')\n"),
        ("README", b"plain text with no name to go by"),
    ]:
        response = upload(client, conversation, name, data)
        assert response.status_code == 201, response.content
        assert response.json()["kind"] == "text"
    assert Attachment.objects.get(name="notes.md").text == "# Plan\n\n- 한국어도 된다"


def test_a_pdf_keeps_its_text(client, owner, conversation):
    client.force_login(owner)
    response = upload(client, conversation, "report.pdf", pdf_bytes("Quarterly numbers", "Up 5"))
    assert response.status_code == 201 and response.json()["kind"] == "pdf"
    assert "Quarterly numbers" in Attachment.objects.get().text


def test_a_text_too_long_for_the_models_window_is_refused_naming_the_limit(
    client, owner, conversation
):
    ChatModel.objects.create(name=conversation.effective_model, context_window=1000)
    client.force_login(owner)
    response = upload(client, conversation, "book.txt", b"word " * 3000)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "book.txt is too long for this model" in error and "1,000 tokens" in error
    assert not Attachment.objects.exists()


def test_the_error_is_in_korean_for_a_korean_user(client, owner, conversation):
    client.force_login(owner)
    url = reverse("upload_attachment", args=[conversation.pk])
    file = SimpleUploadedFile("photo.png", b"not an image", content_type="image/png")
    response = client.post(url, {"file": file}, headers={"accept-language": "ko"})
    assert response.status_code == 400
    assert "photo.png" in response.json()["error"] and "이미지" in response.json()["error"]


def test_only_the_owner_uploads(client, outsider, conversation):
    client.force_login(outsider)
    assert upload(client, conversation, "a.png", image_bytes()).status_code == 404
    client.logout()
    response = upload(client, conversation, "a.png", image_bytes())
    assert response.status_code == 302 and not Attachment.objects.exists()


def test_a_text_that_looks_like_an_old_image_format_stays_text(client, owner, conversation):
    """Pillow reads XBM, a C header of its own: a header file is still a text file here."""
    client.force_login(owner)
    header = (
        b"#define icon_width 8\n#define icon_height 2\n"
        b"static char icon_bits[] = {\n0x00, 0x00,\n0x00, 0x00 };\n"
    )
    response = upload(client, conversation, "icon.h", header, "text/x-chdr")
    assert response.status_code == 201 and response.json()["kind"] == "text"
