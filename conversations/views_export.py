"""Download a conversation as Markdown or JSON; import a JSON export into your own account."""

from __future__ import annotations

from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.formats import number_format
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET

from . import exports, imports
from .models import Conversation, Message
from .views import sidebar_context

CONTENT_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "json": "application/json; charset=utf-8",
}


def download(body: bytes, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, name)
    return response


@require_GET
def export_conversation(request: HttpRequest, conversation_id: UUID, fmt: str) -> HttpResponse:
    if fmt not in CONTENT_TYPES:
        raise Http404("Exports are .md or .json.")
    conversation = get_object_or_404(
        Conversation.objects.owned_by(request.user)
        .select_related("persona")
        .prefetch_related(Prefetch("messages", Message.objects.with_usage())),
        pk=conversation_id,
    )
    if fmt == "json":
        body = exports.export_json([conversation])
    else:
        # The path the conversation shows: a document to read, not every version.
        shown = exports.active_path(conversation.messages.all())
        body = exports.export_markdown(conversation, shown).encode("utf-8")
    return download(body, CONTENT_TYPES[fmt], exports.filename(conversation, fmt))


class ImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Export file (.json or .zip)"),
        help_text=gettext_lazy(
            "A file made with “Download as JSON”, ChatGPT's data export (its zip, or the "
            "conversations.json in it) or Open WebUI's “Export chats”; up to 100 "
            "conversations and 10,000 messages, the newest first."
        ),
    )


def _import_page(request: HttpRequest, form: ImportForm, error: str = "") -> HttpResponse:
    return render(
        request,
        "conversations/import.html",
        {
            "conversation": None,
            "form": form,
            "import_error": error,
            "chat_config": {"maxMessageChars": settings.CHAT_MAX_MESSAGE_CHARS},
            **sidebar_context(request),
        },
        status=400 if error or form.errors else 200,
    )


def import_conversations(request: HttpRequest) -> HttpResponse:
    """GET: choose a file. POST: check all of it, then store it in this user's account.

    A file of bad input (broken JSON, numbers or text no column holds, over a limit) is
    refused with a sentence: `parse_import` raises nothing else for it, so no such file
    becomes a 500 or a logged traceback.
    """
    if request.method != "POST":
        return _import_page(request, ImportForm())
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _import_page(request, form)
    upload = form.cleaned_data["file"]
    # Refused before it is read: the size is known from the upload itself.
    if upload.size > exports.import_limit():
        return _import_page(request, form, exports.too_large_message(upload.size))
    try:
        checked, left_out = exports.read_import(upload.read(exports.import_limit() + 1))
    except exports.ImportRefused as refused:
        return _import_page(request, form, refused.message)
    created = imports.import_conversations(user=request.user, conversations=checked)
    done = ngettext("Imported %d conversation.", "Imported %d conversations.", len(created)) % len(
        created
    )
    if left_out:
        done += " " + ngettext(
            "%(count)d other conversation was left out: an import takes at most "
            "%(conversations)d conversations and %(messages)s messages, the newest first.",
            "%(count)d other conversations were left out: an import takes at most "
            "%(conversations)d conversations and %(messages)s messages, the newest first.",
            left_out,
        ) % {
            "count": left_out,
            "conversations": exports.MAX_CONVERSATIONS,
            "messages": number_format(exports.MAX_IMPORT_MESSAGES, force_grouping=True),
        }
    messages.success(request, done)
    return redirect("conversation", conversation_id=created[0].pk)
