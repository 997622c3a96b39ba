"""Attachments over HTTP: upload one to a conversation, serve its file, take back an unsent one.

Every view answers only the conversation's owner; anyone else gets 404, as for its pages. A
file is served from the default storage through Django, never from a public media URL.
"""

from __future__ import annotations

from uuid import UUID

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET, require_POST

from . import attachments
from .forms import AttachmentForm
from .models import Attachment
from .views import _owned


@require_POST
def upload(request: HttpRequest, conversation_id: UUID) -> JsonResponse:
    """Check and store one file (field `file`); the JSON answer names it for the message
    frame (`attachments` in docs/protocol.md), or says in a sentence why it was refused."""
    conversation = _owned(request, conversation_id)
    form = AttachmentForm(request.POST, request.FILES, conversation=conversation)
    if not form.is_valid():
        errors = form.errors.get("file") or form.non_field_errors()
        return JsonResponse({"error": " ".join(errors)}, status=400)
    attachment = attachments.store(conversation=conversation, checked=form.cleaned_data["file"])
    return JsonResponse(attachments.payload(attachment), status=201)


@require_POST
def discard(request: HttpRequest, conversation_id: UUID, attachment_id: int) -> HttpResponse:
    """Take back an upload no message was sent with (removed from the composer)."""
    conversation = _owned(request, conversation_id)
    attachment = get_object_or_404(conversation.attachments, pk=attachment_id, message=None)
    attachment.delete()
    return HttpResponse(status=204)


@require_GET
def file(request: HttpRequest, conversation_id: UUID, attachment_id: int) -> FileResponse:
    """An attachment's file, to its conversation's owner only."""
    attachment = get_object_or_404(
        Attachment.objects.owned_by(request.user),
        conversation_id=conversation_id,
        pk=attachment_id,
    )
    response = FileResponse(
        attachment.file.open("rb"),
        content_type=attachment.content_type,
        # Images show in the page; a text file or PDF is downloaded, never rendered here.
        as_attachment=attachment.kind != "image",
        filename=attachment.name,
    )
    response["Cache-Control"] = "private, max-age=3600"
    # Whatever a file holds, it runs nothing when opened on its own.
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    return response
