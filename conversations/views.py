"""Pages. Each view parses, checks ownership and hands the write to `services`.

The reads a page needs are the small functions at the top; every one of them runs a fixed
number of queries, whatever the number of conversations or messages (a test counts them).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from uuid import UUID

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST, require_safe

from . import attachments, catalog, replies, selectors, services
from .accounts import user_group
from .catalog import model_info
from .consumers import version_frame
from .errors import ChatError
from .forms import (
    ArchiveForm,
    AttachmentForm,
    ConversationModelForm,
    ConversationSettingsForm,
    InstructionsForm,
    NewConversationForm,
    PinForm,
    RatingForm,
    RenameForm,
)
from .models import Attachment, AttachmentKind, Conversation, Persona, Preferences, Status
from .protocol import RatedFrame, conversation_frame
from .services import sweep_orphaned_replies

logger = logging.getLogger(__name__)

SEARCH_MAX_CHARS = 200


@dataclass
class SidebarGroup:
    label: str
    conversations: list[Conversation] = field(default_factory=list)


def _group_label(day: Any, today: Any) -> str:
    if day == today:
        return str(gettext_lazy("Today"))
    if day == today - timedelta(days=1):
        return str(gettext_lazy("Yesterday"))
    if day > today - timedelta(days=7):
        return str(gettext_lazy("Previous 7 days"))
    return formats.date_format(day, "YEAR_MONTH_FORMAT")


def group_by_day(conversations: list[Conversation]) -> list[SidebarGroup]:
    """Pinned, today, yesterday, previous 7 days, then one group per month."""
    today = timezone.localdate()
    groups: list[SidebarGroup] = []
    for conversation in conversations:
        if conversation.pinned:
            label = _("Pinned")
        else:
            label = _group_label(timezone.localdate(conversation.updated_at), today)
        if not groups or groups[-1].label != label:
            groups.append(SidebarGroup(label))
        groups[-1].conversations.append(conversation)
    return groups


def sidebar_context(
    request: HttpRequest, *, page: str | None = None, current: Any = None
) -> dict[str, Any]:
    """The sidebar's list, filtered by its search.

    `page` is the address of the page the sidebar is on (by default the request's own): the
    list's Rename and Pin forms go back there, with the search kept. `current` is the id of
    the conversation open on it, listed even while blank.
    """
    query = request.GET.get("q", "").strip()[:SEARCH_MAX_CHARS]
    conversations = selectors.sidebar_conversations(
        user=request.user, query=query, current_id=current
    )
    page = page or request.get_full_path()
    return {
        "conversations": conversations,
        "conversation_groups": group_by_day(conversations),
        "search_query": query,
        "search_action": urlsplit(page).path,
        "list_next": _with_search(page, query),
    }


def _with_search(address: str, query: str) -> str:
    """`address` with its `q` parameter set to the sidebar's search (dropped when empty)."""
    parts = urlsplit(address)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "q"]
    if query:
        params.append(("q", query))
    return urlunsplit(("", "", parts.path, urlencode(params), ""))


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


def _owned(request: HttpRequest, conversation_id: UUID) -> Conversation:
    return get_object_or_404(
        Conversation.objects.owned_by(request.user).select_related("persona"), pk=conversation_id
    )


def _chat_config(request: HttpRequest, conversation: Conversation | None) -> dict[str, Any]:
    config: dict[str, Any] = {"maxMessageChars": settings.CHAT_MAX_MESSAGE_CHARS}
    if conversation is not None:
        config.update(
            conversationId=str(conversation.pk),
            socketPath=f"/ws/conversations/{conversation.pk}/",
            olderUrl=reverse("older_messages", args=[conversation.pk]),
            branchUrl=reverse("branch_conversation", args=[conversation.pk, 0]),
            rateUrl=reverse("rate_answer", args=[conversation.pk, 0]),
            pending=_pending(request, conversation),
            personaEmoji=conversation.persona.emoji if conversation.persona else "",
        )
    return config


def _pending(request: HttpRequest, conversation: Conversation) -> dict[str, Any] | None:
    """The first message the new-chat page left for this page's socket to send (read once),
    with its files (`attachments`: their ids, for the frame; `files`: what the composer shows
    of those still unsent until the message is stored)."""
    pending = request.session.pop(f"pending:{conversation.pk}", None)
    if pending and pending.get("attachments"):
        found = conversation.attachments.filter(message=None).in_bulk(pending["attachments"])
        pending["files"] = [
            attachments.payload(found[pk]) for pk in pending["attachments"] if pk in found
        ]
    return pending


def attachment_context(conversation: Conversation) -> dict[str, Any]:
    """What the composer needs to attach files: whether the model reads images (the page reads
    it again when the model changes) and the limits, checked before an upload is tried."""
    return {
        "accepts_images": model_info(conversation.effective_model).accepts_images,
        "attachment_limits": _attachment_limits(),
    }


def _attachment_limits() -> dict[str, Any]:
    return {
        "files": settings.CHAT_ATTACHMENTS_PER_MESSAGE,
        "bytes": settings.CHAT_ATTACHMENT_MAX_BYTES,
        "accept": attachments.ACCEPT,
    }


# Pages.


@login_not_required
@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """`/favicon.ico`, asked for by browsers and tools that read no `<link rel="icon">`."""
    return redirect(static("favicon.ico"))


def chat(request: HttpRequest) -> HttpResponse:
    """The newest conversation, or the new-chat page when there is none or it is blank (a
    chat started with no message yet: starting one from the page takes it over)."""
    newest, blank = selectors.newest_conversation(user=request.user)
    if newest is not None and not blank:
        return redirect("conversation", conversation_id=newest.pk)
    return new_chat_page(request)


def new_chat_page(request: HttpRequest, form: NewConversationForm | None = None) -> HttpResponse:
    personas = list(Persona.objects.active())
    default = next((p for p in personas if p.is_default), personas[0] if personas else None)
    form = form or NewConversationForm(initial={"persona": default})
    # Whether each persona's model reads images: the composer says so before an image is sent
    # to one that does not (one query per model, not per persona).
    reads_images: dict[str, bool] = {}
    for persona in personas:
        model = persona.effective_model
        if model not in reads_images:
            reads_images[model] = model_info(model).accepts_images
        persona.accepts_images = reads_images[model]
    chosen = next((p for p in personas if str(p.pk) == str(form["persona"].value())), default)
    if chosen is not None:
        accepts_images = chosen.accepts_images
    else:  # no persona: the chat gets the server's default model
        accepts_images = model_info(settings.OPENAI_MODEL).accepts_images
    return render(
        request,
        "conversations/new_chat.html",
        {
            "conversation": None,
            "form": form,
            "personas": personas,
            "default_persona": default,
            "accepts_images": accepts_images,
            "attachment_limits": _attachment_limits(),
            "chat_config": _chat_config(request, None),
            **sidebar_context(request),
        },
    )


def _wants_json(request: HttpRequest) -> bool:
    """The page's script posted the form (fetch) and reads the answer as JSON."""
    return request.headers.get("Accept", "").startswith("application/json")


def new_conversation(request: HttpRequest) -> HttpResponse:
    """GET: pick a persona and write the first message. POST: start the conversation.

    The page posts with fetch (`Accept: application/json`) and gets {url} of the conversation
    when it started, {errors} with 400 when refused: the page stays as it was, files picked
    included, for the one refused to be taken out. Without JavaScript the form posts here, is
    sent on to the conversation, or is shown again with the sentence (its files to pick again).
    """
    if request.method != "POST":
        return new_chat_page(request)
    form = NewConversationForm(request.POST, request.FILES)
    wants_json = _wants_json(request)
    if not form.is_valid():
        if wants_json:
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        return new_chat_page(request, form)
    persona = form.cleaned_data["persona"]
    overrides = None
    source_id = form.cleaned_data["copy_from"]
    if source_id:
        source = _owned(request, source_id)
        persona, overrides = source.persona, source.settings_dict()
    # A blank conversation of the user's (New chat or Reset with no message since) is taken
    # over rather than a second one made: none is left behind in the sidebar.
    created = services.start_new_chat(user=request.user, persona=persona, overrides=overrides)
    try:
        files = _store_first_files(created, form.cleaned_data["files"])
    except ValidationError as refused:
        form.add_error("files", refused)
        if wants_json:
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        return new_chat_page(request, form)
    if form.cleaned_data["message"] or files:
        # The page's socket sends it once it is connected: the reply runs in the server's
        # event loop, not in this request. Its files are stored unsent, as uploads are.
        pending: dict[str, Any] = {
            "content": form.cleaned_data["message"],
            "client_id": uuid.uuid4().hex,
        }
        if files:
            pending["attachments"] = [attachment.pk for attachment in files]
        request.session[f"pending:{created.pk}"] = pending
    if source_id:
        messages.success(request, _("New conversation with the same settings."))
    if wants_json:
        return JsonResponse({"url": reverse("conversation", args=[created.pk])})
    return redirect("conversation", conversation_id=created.pk)


def _store_first_files(conversation: Conversation, uploads: list[Any]) -> list[Attachment]:
    """The new-chat page's files for the first message, each checked as an upload is
    (`AttachmentForm`: its content, size and count, and the conversation's model's context
    window) and, as sending checks, an image only for a model that reads images; stored
    unsent. A refused one raises its sentence, and none of them is left stored."""
    if not uploads:
        return []
    # A blank conversation taken over may hold uploads of a chat composer left unsent: no
    # message will carry them, and they would count against this message's files.
    conversation.attachments.filter(message=None).delete()
    reads_images = model_info(conversation.effective_model).accepts_images
    stored: list[Attachment] = []
    try:
        for upload in uploads:
            check = AttachmentForm({}, {"file": upload}, conversation=conversation)
            if not check.is_valid():
                raise ValidationError(check.errors.get("file") or check.non_field_errors())
            checked = check.cleaned_data["file"]
            if checked.kind == AttachmentKind.IMAGE and not reads_images:
                raise ValidationError(
                    _(
                        "This persona's model does not read images. Remove the image, or pick "
                        "a persona whose model accepts images."
                    ),
                    code="images_not_accepted",
                )
            stored.append(attachments.store(conversation=conversation, checked=checked))
    except BaseException:
        for attachment in stored:
            attachment.delete()
        raise
    return stored


def conversation(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    current = _owned(request, conversation_id)
    if "message" in request.GET:
        return _show_message(request, current)
    page, has_older = selectors.message_page(current)
    # A reply left "streaming" by a process that died is shown as what it is: interrupted.
    # (Sweeping writes, so only when the page shows a streaming reply.)
    if any(m.status == Status.STREAMING for m in page) and sweep_orphaned_replies(current.pk):
        page, has_older = selectors.message_page(current)
    return render(
        request,
        "conversations/chat.html",
        {
            "conversation": current,
            "chat_messages": page,
            "has_older": has_older,
            "settings_form": ConversationSettingsForm(instance=current),
            "model_form": ConversationModelForm(conversation=current),
            "rename_form": RenameForm(initial={"title": current.title}),
            "chat_config": _chat_config(request, current),
            **attachment_context(current),
            **sidebar_context(request, current=current.pk),
        },
    )


def _show_message(request: HttpRequest, current: Conversation) -> HttpResponse:
    """`?message=ID` (a search result): the conversation on the path that holds that message,
    whichever version it is in. The choice is saved and every open tab is told."""
    try:
        message_id = int(request.GET["message"])
    except ValueError:
        raise Http404("Not a message id.") from None
    change = _call(
        services.show_message,
        user=request.user,
        conversation_id=current.pk,
        message_id=message_id,
    )
    if change is not None:
        _tell_tabs(replies.group_name(current.pk), version_frame(change))
    address = reverse("conversation", args=[current.pk])
    return redirect(f"{address}#message-{message_id}")


@require_GET
def older_messages(request: HttpRequest, conversation_id: UUID) -> JsonResponse:
    """A page of older messages as HTML, for scrolling up a long conversation."""
    current = _owned(request, conversation_id)
    try:
        before = int(request.GET["before"])
        context_from = request.GET.get("context_from")
        context_from_id = int(context_from) if context_from else None
    except (KeyError, ValueError):
        return JsonResponse({"error": "before must be a message id"}, status=400)
    page, has_older = selectors.message_page(
        current, before=before, context_from_id=context_from_id
    )
    html = render_to_string(
        "conversations/_messages.html",
        {"chat_messages": page, "conversation": current},
        request=request,
    )
    return JsonResponse({"html": html, "has_older": has_older})


@require_POST
def branch(request: HttpRequest, conversation_id: UUID, message_id: int) -> HttpResponse:
    """A new conversation holding the active path up to a message, with the same settings."""
    try:
        created = services.branch_conversation(
            user=request.user, conversation_id=conversation_id, message_id=message_id
        )
    except ChatError as exc:
        if exc.code == "not_found":
            raise Http404(exc.message) from None
        messages.error(request, exc.message)
        return redirect("conversation", conversation_id=conversation_id)
    messages.success(request, _("A new conversation, branched from the message you chose."))
    return redirect("conversation", conversation_id=created.pk)


@require_GET
def message_logprobs(request: HttpRequest, conversation_id: UUID, message_id: int) -> JsonResponse:
    """A reply's tokens with their probabilities: too large for the socket's frames."""
    message = get_object_or_404(_owned(request, conversation_id).messages, pk=message_id)
    return JsonResponse({"logprobs": message.logprobs or []})


@require_GET
def conversation_list(request: HttpRequest) -> HttpResponse:
    """The sidebar's list alone, for searching as one types.

    `page` is the address of the page that asks (a fragment is no page to come back to).
    """
    current_id = request.GET.get("current", "")
    try:
        current = uuid.UUID(current_id) if current_id else None
    except ValueError:
        current = None
    page = request.GET.get("page", "")
    if not page.startswith("/") or not url_has_allowed_host_and_scheme(
        page, {request.get_host()}, request.is_secure()
    ):
        page = reverse("chat")
    return render(
        request,
        "conversations/_conversation_list.html",
        {"current_id": current_id, **sidebar_context(request, page=page, current=current)},
    )


@require_POST
def rename(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    form = RenameForm(request.POST)
    target = _safe_next(request, reverse("conversation", args=[conversation_id]))
    if not form.is_valid():
        messages.error(request, _("A title needs at least one character."))
        return redirect(target)
    renamed = _call(
        services.rename_conversation,
        user=request.user,
        conversation_id=conversation_id,
        title=form.cleaned_data["title"],
    )
    _tell_tabs(user_group(request.user.pk), conversation_frame(renamed))
    messages.success(request, _("Conversation renamed."))
    return redirect(target)


@require_POST
def pin(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    form = PinForm(request.POST)
    pinned = form.is_valid() and form.cleaned_data["pinned"]
    changed = _call(
        services.set_pinned, user=request.user, conversation_id=conversation_id, pinned=pinned
    )
    _tell_tabs(user_group(request.user.pk), conversation_frame(changed))
    return redirect(_safe_next(request, reverse("conversation", args=[conversation_id])))


@require_POST
def archive(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    """Archive a conversation (`archived` on) or take it out of the archive (off)."""
    form = ArchiveForm(request.POST)
    archived = form.is_valid() and form.cleaned_data["archived"]
    changed = _call(
        services.set_archived, user=request.user, conversation_id=conversation_id, archived=archived
    )
    # Its other tabs show it archived (or not) without a reload: the note, the sidebar's mark.
    _tell_tabs(user_group(request.user.pk), conversation_frame(changed))
    messages.success(
        request,
        _("Conversation archived: it is under Archived, and a search still finds it.")
        if archived
        else _("Conversation back in the sidebar."),
    )
    return redirect(_safe_next(request, reverse("conversation", args=[conversation_id])))


def archived(request: HttpRequest) -> HttpResponse:
    """The user's archived conversations, to open, take out of the archive or delete."""
    return render(
        request,
        "conversations/archived.html",
        {
            "conversation": None,
            "archived": selectors.archived_conversations(user=request.user),
            "chat_config": {"maxMessageChars": settings.CHAT_MAX_MESSAGE_CHARS},
            **sidebar_context(request),
        },
    )


def delete(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    """GET asks for confirmation; POST deletes."""
    current = _owned(request, conversation_id)
    if request.method == "POST":
        _call(services.delete_conversation, user=request.user, conversation_id=current.pk)
        # Its other tabs close their socket and say it is gone (a message typed there stays).
        _tell_tabs(replies.group_name(current.pk), {"type": "conversation.deleted"})
        messages.success(request, _("Conversation deleted."))
        return redirect("chat")
    return render(
        request,
        "conversations/confirm_delete.html",
        {"conversation": current, "chat_config": _chat_config(request, None)},
    )


def update_settings(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    """POST saves the settings; GET shows the conversation with its settings open.

    The page saves with fetch and gets JSON (`Accept: application/json`): the panel stays open
    and shows the form's errors in place. Without JavaScript the form posts here: a saved form
    goes back to the conversation, a refused one is shown at this address, which a reload,
    Back or a bookmark opens again (GET).
    """
    current = _owned(request, conversation_id)
    if request.method != "POST":
        return _settings_page(request, current, ConversationSettingsForm(instance=current))
    form = ConversationSettingsForm(request.POST, instance=current)
    wants_json = _wants_json(request)
    if form.is_valid():
        _call(
            services.update_conversation_settings,
            user=request.user,
            conversation_id=current.pk,
            values=form.settings_values(),
        )
        saved = _("Settings saved. The next answer uses them.")
        if wants_json:
            return JsonResponse({"message": saved})
        messages.success(request, saved)
        return redirect("conversation", conversation_id=current.pk)
    if wants_json:
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    current.refresh_from_db()
    return _settings_page(request, current, form, status=400)


@require_POST
def choose_model(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    """The header's model picker: the conversation's next answers are written by the chosen
    model (one of the admin's list: `catalog.check_model`).

    The page posts with fetch and gets JSON (`Accept: application/json`): {message, model,
    label, accepts_images} when saved, {errors} with 400 when refused. Without JavaScript the
    form posts here and the conversation is shown again, with the sentence.
    """
    current = _owned(request, conversation_id)
    form = ConversationModelForm(request.POST, conversation=current)
    wants_json = _wants_json(request)
    if not form.is_valid():
        if wants_json:
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        for error in form.errors.get("model", []):
            messages.error(request, error)
        return redirect("conversation", conversation_id=current.pk)
    model = form.cleaned_data["model"]
    _call(
        services.update_conversation_settings,
        user=request.user,
        conversation_id=current.pk,
        values={"model": model},
    )
    info = catalog.model_info(model)
    saved = _("The next answer is written by %(model)s.") % {"model": info.label}
    if wants_json:
        return JsonResponse(
            {
                "message": saved,
                "model": model,
                "label": info.label,
                "accepts_images": info.accepts_images,
            }
        )
    messages.success(request, saved)
    return redirect("conversation", conversation_id=current.pk)


def _settings_page(
    request: HttpRequest, current: Conversation, form: ConversationSettingsForm, status: int = 200
) -> HttpResponse:
    page, has_older = selectors.message_page(current)
    return render(
        request,
        "conversations/chat.html",
        {
            "conversation": current,
            "chat_messages": page,
            "has_older": has_older,
            "settings_form": form,
            "settings_open": True,
            "model_form": ConversationModelForm(conversation=current),
            "rename_form": RenameForm(initial={"title": current.title}),
            "chat_config": _chat_config(request, current),
            **attachment_context(current),
            **sidebar_context(
                request, page=reverse("conversation", args=[current.pk]), current=current.pk
            ),
        },
        status=status,
    )


def _call(write: Any, **kwargs: Any) -> Any:
    try:
        return write(**kwargs)
    except ChatError as exc:
        if exc.code == "not_found":
            raise Http404(exc.message) from None
        raise


def custom_instructions(request: HttpRequest) -> HttpResponse:
    """GET: the user's custom instructions. POST: save them; the next answer, in any of their
    conversations, is written with them."""
    preferences = Preferences.objects.filter(user=request.user).first()
    form = InstructionsForm(
        request.POST if request.method == "POST" else None,
        instance=preferences or Preferences(user=request.user),
    )
    if request.method == "POST" and form.is_valid():
        services.save_instructions(
            user=request.user, instructions=form.cleaned_data["instructions"]
        )
        saved = form.cleaned_data["instructions"]
        messages.success(
            request,
            _("Saved. Your next messages carry them, in every conversation.")
            if saved
            else _("Your custom instructions are off: none are sent."),
        )
        return redirect("custom_instructions")
    return render(
        request,
        "conversations/instructions.html",
        {
            "conversation": None,
            "form": form,
            "chat_config": {"maxMessageChars": settings.CHAT_MAX_MESSAGE_CHARS},
            **sidebar_context(request),
        },
        status=400 if form.errors else 200,
    )


@require_POST
def rate_answer(request: HttpRequest, conversation_id: UUID, message_id: int) -> JsonResponse:
    """An answer's 👍 or 👎 (`rating`: good, bad, or empty to take it back), posted by the
    page's script: {rating} back, or {errors} with 400."""
    form = RatingForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    rating = form.cleaned_data["rating"]
    _call(
        services.rate_answer,
        user=request.user,
        conversation_id=conversation_id,
        message_id=message_id,
        rating=rating,
    )
    rated: RatedFrame = {"type": "message.rated", "message_id": message_id, "rating": rating}
    _tell_tabs(replies.group_name(conversation_id), rated)
    return JsonResponse({"rating": rating})


def _tell_tabs(group: str, frame: Mapping[str, Any]) -> None:
    """Send `frame` to the open tabs of a group: a conversation's (`replies.group_name`), or
    all of a user's (`user_group`), whose sidebars list the conversation. What is saved stands
    if the layer fails: the tabs find it when they next load a page."""
    try:
        async_to_sync(replies.send_frames)(group, frame)
    except Exception as exc:
        logger.warning("%s reached no tab (%r)", frame["type"], exc)
