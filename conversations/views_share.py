"""Share links: make one (Share in a conversation's menu), list and revoke them, the public
read-only page, and Continue this conversation."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from . import sharing
from .models import ShareLink
from .views import _call, sidebar_context

NOINDEX = "noindex"


@require_POST
def share(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    """Share: a new link to the conversation as it is now; the owner is shown it."""
    link = _call(
        sharing.share_conversation,
        user=request.user,
        conversation_id=conversation_id,
        include_system_prompt=request.POST.get("include_system_prompt") == "on",
    )
    messages.success(request, _("Link created: anyone with it can read this conversation."))
    return redirect(f"{reverse('share_links')}?new={link.pk}")


@require_safe
def share_links(request: HttpRequest) -> HttpResponse:
    """The owner's links, newest first, each with its address and a Revoke button."""
    if not sharing.sharing_enabled():
        raise Http404("Sharing is off.")
    links = list(
        ShareLink.objects.owned_by(request.user).live().select_related("conversation")[:200]
    )
    for link in links:
        link.address = request.build_absolute_uri(reverse("shared", args=[link.token]))
    new = request.GET.get("new", "")
    return render(
        request,
        "conversations/share_links.html",
        {
            "links": links,
            "new_id": int(new) if new.isdigit() else None,
            "conversation": None,
            "chat_config": {"maxMessageChars": settings.CHAT_MAX_MESSAGE_CHARS},
            **sidebar_context(request),
        },
    )


@require_POST
def revoke(request: HttpRequest, share_id: int) -> HttpResponse:
    sharing.revoke_share(user=request.user, share_id=share_id)
    messages.success(request, _("Link revoked: it no longer opens."))
    return redirect("share_links")


def _shown_messages(link: ShareLink) -> list[SimpleNamespace]:
    """The snapshot as objects the chat's template helpers read like messages."""
    shown = []
    for item in link.snapshot:
        response_format = item.get("response_format")
        shown.append(
            SimpleNamespace(
                role=item.get("role", ""),
                content=item.get("content", ""),
                model=item.get("model", ""),
                status=item.get("status", ""),
                parameters={"response_format": response_format} if response_format else None,
                created_at=parse_datetime(item.get("created_at") or ""),
                attachments=[str(name) for name in item.get("attachments") or []],
            )
        )
    return shown


@login_not_required
@require_safe
def shared(request: HttpRequest, token: str) -> HttpResponse:
    """The read-only page of a share link: no login, no composer, no sidebar, not indexed."""
    link = sharing.live_link(token)
    context: dict[str, Any] = {
        "link": link,
        "persona": link.conversation.persona,
        "shared_messages": _shown_messages(link),
    }
    response = render(request, "conversations/shared.html", context)
    response.headers["X-Robots-Tag"] = NOINDEX
    return response


@require_POST
def continue_shared(request: HttpRequest, token: str) -> HttpResponse:
    """Continue this conversation: a copy in the visitor's own account."""
    conversation = sharing.continue_shared(user=request.user, token=token)
    messages.success(request, _("A copy of the shared conversation, yours to continue."))
    return redirect("conversation", conversation_id=conversation.pk)
