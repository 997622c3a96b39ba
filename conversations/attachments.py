"""Attachments: what an uploaded file is, checked by its content, and what the model reads of it.

An upload is read whole (at most CHAT_ATTACHMENT_MAX_BYTES) and judged by its bytes, never its
name: an image is one Pillow decodes as PNG, JPEG, WebP or GIF; a PDF one pypdf reads and finds
text in; a text file one that decodes as UTF-8 with no control characters a text never has. A
name or content type that claims one of these for bytes that are not is refused, as is any
other file. Images are re-encoded (their metadata, EXIF and GPS, is left behind) and scaled
down to what the model reads. Every refusal is a `ValidationError` with a sentence for the
person who sent the file; nothing is stored before the checks pass.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import mimetypes
import re
import warnings
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.template.defaultfilters import filesizeformat
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from .context import STORED_IMAGE, AttachedFile, count_tokens
from .models import ATTACHMENT_SUFFIXES, Attachment, AttachmentKind

logger = logging.getLogger(__name__)

# Pillow's format names and the content types they are served with.
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
PDF_TYPE = "application/pdf"
TEXT_TYPE = "text/plain"
# Names a text file is recognised by, beyond the text/* content types: code, data, markup.
_TEXT_NAMES = (
    "txt text md markdown rst csv tsv json jsonl yaml yml toml ini cfg conf log xml html htm "
    "css js mjs ts tsx jsx py rb go rs java kt c h cc cpp hpp cs php swift sh bash zsh sql r "
    "lua pl scala tex vue svelte dart env"
)
TEXT_SUFFIXES = frozenset(f".{name}" for name in _TEXT_NAMES.split())
# The file picker's `accept`: what it offers, and what the page checks a dropped or pasted file
# against before uploading it (static/js/attachments.js).
ACCEPT = ",".join([*IMAGE_TYPES.values(), PDF_TYPE, "text/*", *sorted(TEXT_SUFFIXES)])
# Control characters a text file never holds (tab, line feed, form feed and carriage return
# it may).
_BINARY_CHAR = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
MAX_NAME = 255


@dataclass(frozen=True)
class Checked:
    """An upload that passed the checks: what is stored."""

    kind: str
    name: str
    content_type: str
    data: bytes
    width: int | None = None
    height: int | None = None
    text: str = ""


def size_error(name: str, size: int) -> ValidationError:
    limit = settings.CHAT_ATTACHMENT_MAX_BYTES
    return ValidationError(
        _("%(name)s is too large (%(size)s): files can be at most %(limit)s.")
        % {"name": name, "size": filesizeformat(size), "limit": filesizeformat(limit)},
        code="too_large",
    )


def _claims(name: str, content_type: str) -> str:
    """What the name or content type says the file is: image, pdf, text, or '' for nothing."""
    guessed = mimetypes.guess_type(name)[0] or ""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    for claimed in (content_type.lower(), guessed):
        if claimed.startswith("image/"):
            return "image"
        if claimed == PDF_TYPE:
            return "pdf"
    if suffix in TEXT_SUFFIXES or content_type.lower().startswith("text/"):
        return "text"
    return ""


def check_upload(*, name: str, content_type: str, data: bytes, model: str | None) -> Checked:
    """Judge an upload by its bytes; raise `ValidationError` with the reason it is refused.

    `model` is the conversation's: a file's text must fit its context window (None: an
    import's file, whose conversation's model is not known yet).
    """
    name = " ".join(name.replace("/", " ").replace("\\", " ").split())[:MAX_NAME] or "file"
    if len(data) > settings.CHAT_ATTACHMENT_MAX_BYTES:
        raise size_error(name, len(data))
    if not data:
        raise ValidationError(_("%(name)s is empty.") % {"name": name}, code="empty")
    claims = _claims(name, content_type)
    image = _image_format(data)
    if data.startswith(b"%PDF-"):
        checked = _check_pdf(name, data)
    elif image in IMAGE_TYPES or image == "bomb":
        checked = _check_image(name, data, image)
    elif image is not None and claims == "image":
        raise _unsupported(name)  # an image, of a format the models do not read (BMP, TIFF…)
    elif claims in ("image", "pdf"):
        raise ValidationError(
            _("%(name)s is not a valid %(kind)s file: its content is something else.")
            % {"name": name, "kind": "PDF" if claims == "pdf" else _("image")},
            code="not_what_it_claims",
        )
    else:
        checked = _check_text(name, data, claims)
    if checked.text and model is not None:
        _check_fits(checked, model)
    return checked


def _image_format(data: bytes) -> str | None:
    """Pillow's name for the image format of `data` (from its header), None if not an image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.format or ""
    except Image.DecompressionBombError:
        return "bomb"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def _unsupported(name: str) -> ValidationError:
    return ValidationError(
        _(
            "%(name)s is not a supported file. Attach images (PNG, JPEG, WebP, GIF), "
            "text files (code, Markdown, CSV, JSON, plain text) or PDFs."
        )
        % {"name": name},
        code="unsupported",
    )


def _bomb(name: str) -> ValidationError:
    return ValidationError(
        _("%(name)s is refused: its dimensions are too large (at most %(limit)s pixels).")
        % {
            "name": name,
            "limit": number_format(settings.CHAT_IMAGE_MAX_PIXELS, force_grouping=True),
        },
        code="image_bomb",
    )


def _check_image(name: str, data: bytes, image_format: str) -> Checked:
    if image_format == "bomb":
        raise _bomb(name)
    content_type = IMAGE_TYPES[image_format]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                # The header's dimensions, checked before a single pixel is decoded: a few
                # kilobytes can claim a picture that takes gigabytes to decode.
                width, height = image.size
                if width * height > settings.CHAT_IMAGE_MAX_PIXELS:
                    raise _bomb(name)
                image.seek(0)  # an animated GIF: its first frame, as models read it
                image.load()
                encoded, size = _reencode(image, image_format)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb(name) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise ValidationError(
            _("%(name)s is not a valid image: it could not be decoded.") % {"name": name},
            code="not_what_it_claims",
        ) from None
    return Checked(AttachmentKind.IMAGE, name, content_type, encoded, size[0], size[1])


def fitted_size(width: int, height: int) -> tuple[int, int]:
    """The size an image is scaled down to: within the long and short side the model reads."""
    long_side = settings.CHAT_IMAGE_MAX_LONG_SIDE
    short_side = settings.CHAT_IMAGE_MAX_SHORT_SIDE
    scale = min(1.0, long_side / max(width, height), short_side / min(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _reencode(image: Image.Image, image_format: str) -> tuple[bytes, tuple[int, int]]:
    """The image drawn anew, the right way up, scaled down, with none of its metadata."""
    image = ImageOps.exif_transpose(image)
    size = fitted_size(*image.size)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    if image_format == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    elif image_format in ("PNG", "WEBP") and image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA")
    # A new image from the pixels alone: no EXIF, GPS, XMP, ICC or text chunk comes along.
    clean = Image.frombytes(image.mode, image.size, image.tobytes())
    if image.mode == "P":
        clean.putpalette(image.getpalette() or [])
        if "transparency" in image.info:
            clean.info["transparency"] = image.info["transparency"]
    out = io.BytesIO()
    options: dict[str, Any] = {"quality": 90} if image_format in ("JPEG", "WEBP") else {}
    clean.save(out, format=image_format, **options)
    return out.getvalue(), clean.size


def _check_pdf(name: str, data: bytes) -> Checked:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ValidationError(
                _("%(name)s is protected by a password: its text cannot be read.") % {"name": name},
                code="pdf_encrypted",
            )
        pages = [page.extract_text() or "" for page in reader.pages]
    except ValidationError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError):
        raise ValidationError(
            _("%(name)s is not a valid PDF: it could not be read.") % {"name": name},
            code="not_what_it_claims",
        ) from None
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise ValidationError(
            _("%(name)s has no text to read (a scanned PDF holds only pictures of its pages).")
            % {"name": name},
            code="pdf_no_text",
        )
    return Checked(AttachmentKind.PDF, name, PDF_TYPE, data, text=text.replace("\x00", ""))


def _check_text(name: str, data: bytes, claims: str) -> Checked:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    if text is None or _BINARY_CHAR.search(text):
        if claims == "text":
            raise ValidationError(
                _("%(name)s is not a text file: it is not UTF-8 text.") % {"name": name},
                code="not_what_it_claims",
            )
        raise _unsupported(name)
    return Checked(AttachmentKind.TEXT, name, TEXT_TYPE, data, text=text)


def _check_fits(checked: Checked, model: str) -> None:
    """A file's text must fit the model's context window: refused, naming the limit."""
    from .catalog import model_info

    window = model_info(model).context_window
    tokens = count_tokens(AttachedFile(checked.name, checked.kind, checked.text).text_part(), model)
    if tokens > window:
        raise ValidationError(
            _(
                "%(name)s is too long for this model: about %(tokens)s tokens, and the model "
                "reads at most %(limit)s tokens at once."
            )
            % {
                "name": checked.name,
                "tokens": number_format(tokens, force_grouping=True),
                "limit": number_format(window, force_grouping=True),
            },
            code="too_long_for_model",
        )


def store(*, conversation: Any, checked: Checked, message: Any = None) -> Attachment:
    """Save a checked upload as an attachment of the conversation, of no message yet unless
    `message` is given."""
    attachment = Attachment(
        conversation=conversation,
        message=message,
        kind=checked.kind,
        name=checked.name,
        content_type=checked.content_type,
        size=len(checked.data),
        width=checked.width,
        height=checked.height,
        text=checked.text,
    )
    attachment.file.save(checked.name, ContentFile(checked.data), save=False)
    try:
        attachment.save()
    except Exception:
        attachment.file.delete(save=False)
        raise
    return attachment


def copy_to(attachments: list[Attachment], message_of: dict[int, Any], conversation: Any) -> None:
    """Copies of attachments for other messages (`message_of`: an original message id -> the
    copy's message), each with a file of its own: deleting one conversation never takes a
    file another still shows."""
    for original in attachments:
        with original.file.open("rb") as source:
            data = source.read()
        copy = Attachment(
            conversation=conversation,
            message=message_of[original.message_id],
            kind=original.kind,
            name=original.name,
            content_type=original.content_type,
            size=original.size,
            width=original.width,
            height=original.height,
            text=original.text,
            created_at=original.created_at,
        )
        copy.file.save(original.name, ContentFile(data), save=False)
        copy.save()


def data_url(file_name: str) -> str:
    """A stored image's bytes as a data URL, the way the model's request carries it."""
    suffix = "." + file_name.rsplit(".", 1)[-1].lower()
    content_type = next((t for t, s in ATTACHMENT_SUFFIXES.items() if s == suffix), "image/png")
    with default_storage.open(file_name, "rb") as source:
        encoded = base64.b64encode(source.read()).decode("ascii")
    return f"data:{content_type};base64,{encoded}"


def _read_images(request: dict[str, Any]) -> dict[str, Any]:
    messages = []
    for message in request["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            content = [
                {"type": "image_url", "image_url": {"url": data_url(url[len(STORED_IMAGE) :])}}
                if part.get("type") == "image_url"
                and (url := part["image_url"]["url"]).startswith(STORED_IMAGE)
                else part
                for part in content
            ]
            message = {**message, "content": content}
        messages.append(message)
    return {**request, "messages": messages}


async def with_images(request: dict[str, Any]) -> dict[str, Any]:
    """The request with its stored images' bytes in it (data URLs), read in a thread just
    before the model is called: never inside the transaction that stored the message, where
    a slow storage (a bucket) would hold the conversation's lock. A request with no stored
    image is handed back as it is."""
    if not any(
        isinstance(m.get("content"), list) and STORED_IMAGE in str(m["content"])
        for m in request.get("messages", ())
    ):
        return request
    try:
        return await asyncio.to_thread(_read_images, request)
    except OSError as exc:
        from .llm import ModelError

        logger.warning("an attached image could not be read: %r", exc)
        raise ModelError(
            _("An attached image could not be read from the storage."), code="attachment_missing"
        ) from None


def attached_file(attachment: Attachment) -> AttachedFile:
    """What the model reads of an attachment (an image's bytes are read as it is sent)."""
    return AttachedFile(
        name=attachment.name,
        kind=attachment.kind,
        text=attachment.text,
        width=attachment.width or 0,
        height=attachment.height or 0,
        stored=attachment.file.name if attachment.kind == AttachmentKind.IMAGE else "",
    )


def payload(attachment: Attachment) -> dict[str, Any]:
    """An attachment as the page and the socket show it."""
    from django.urls import reverse

    return {
        "id": attachment.pk,
        "kind": attachment.kind,
        "name": attachment.name,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
        "url": reverse(
            "attachment_file",
            kwargs={"conversation_id": attachment.conversation_id, "attachment_id": attachment.pk},
        ),
    }


@receiver(post_delete, sender=Attachment)
def delete_stored_file(sender: Any, instance: Attachment, **kwargs: Any) -> None:
    """An attachment's file goes with its row, once the delete is committed (a rolled back
    delete keeps both)."""
    if instance.file.name:
        storage, name = instance.file.storage, instance.file.name
        transaction.on_commit(lambda: storage.delete(name))


def load_payloads(messages: list[Any]) -> None:
    """Give each message the payloads of its attachments (`attachment_payloads`), for the
    page and the socket: one query for all of them, none when no user message is among them."""
    users = [m.pk for m in messages if m.role == "user"]
    found: dict[int, list[dict[str, Any]]] = {}
    if users:
        for attachment in Attachment.objects.filter(message_id__in=users):
            found.setdefault(attachment.message_id, []).append(payload(attachment))
    for message in messages:
        message.attachment_payloads = found.get(message.pk, [])
