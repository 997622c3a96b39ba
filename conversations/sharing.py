"""Share links: the writes (share, revoke, continue) and the one read a share page needs.

A link holds a snapshot of the conversation's active path as it was when shared
(`ShareLink.snapshot`), so nothing said afterwards is shown to whoever holds the link.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from .models import Attachment, Conversation, Message, Role, ShareLink, Status
from .services import get_owned


def sharing_enabled() -> bool:
    return bool(getattr(settings, "CHAT_SHARING", True))


def _snapshot_item(message: Message, files: list[str]) -> dict[str, Any]:
    status = message.status
    if status == Status.STREAMING:
        # Shared while being written: the link shows what had arrived, as a cut-short answer.
        status = Status.INTERRUPTED
    parameters = message.parameters or {}
    return {
        "role": message.role,
        "content": message.content,
        "model": message.model,
        "status": status,
        "response_format": parameters.get("response_format", ""),
        "created_at": message.created_at.isoformat(),
        # The names of the message's files, never the files: a visitor gets no attachment.
        "attachments": files,
    }


def share_conversation(
    *, user: Any, conversation_id: Any, include_system_prompt: bool = False
) -> ShareLink:
    """A new link to the conversation's active path as it is now (owner only, else 404)."""
    if not sharing_enabled():
        raise Http404("Sharing is off.")
    conversation = get_owned(user=user, conversation_id=conversation_id)
    path = Message.objects.tree(conversation.pk).path()
    found = Message.objects.in_bulk(path)
    messages = [found[pk] for pk in path if pk in found and found[pk].role != Role.SYSTEM]
    files: dict[int, list[str]] = {}
    for message_id, name in Attachment.objects.filter(message_id__in=path).values_list(
        "message_id", "name"
    ):
        files.setdefault(message_id, []).append(name)
    return ShareLink.objects.create(
        conversation=conversation,
        title=conversation.title,
        include_system_prompt=include_system_prompt,
        system_prompt=conversation.system_prompt if include_system_prompt else "",
        snapshot=[_snapshot_item(message, files.get(message.pk, [])) for message in messages],
    )


def revoke_share(*, user: Any, share_id: int) -> ShareLink:
    """Revoke one of the user's links: from now on its address answers 404."""
    with transaction.atomic():
        link = ShareLink.objects.owned_by(user).select_for_update().filter(pk=share_id).first()
        if link is None:
            raise Http404("No such share link.")
        if link.revoked_at is None:
            link.revoked_at = timezone.now()
            link.save(update_fields=["revoked_at"])
    return link


def revoke_links(links: Any) -> int:
    """Revoke every live link of a queryset (the admin's action)."""
    return links.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def live_link(token: str) -> ShareLink:
    """The link a share page shows: not revoked, sharing on; otherwise 404."""
    if not sharing_enabled():
        raise Http404("Sharing is off.")
    link = (
        ShareLink.objects.live()
        .select_related("conversation__persona")
        .filter(token=token, conversation__importing=False)
        .first()
    )
    if link is None:
        raise Http404("No such share link.")
    return link


def continue_shared(*, user: Any, token: str) -> Conversation:
    """A copy of a shared snapshot as a new conversation of `user`'s, one message after another.

    The copies are marked `imported`: whatever tokens they cost were spent by the sharer, so
    no usage figure of the visitor's counts them. The system prompt comes along when the
    link shares it; otherwise the conversation gets the default persona's settings.
    """
    link = live_link(token)
    source = link.conversation
    conversation = Conversation(user=user, persona=source.persona)
    if source.persona is not None:
        for name, value in source.persona.settings_dict().items():
            setattr(conversation, name, value)
    if link.include_system_prompt:
        conversation.system_prompt = link.system_prompt
    conversation.title = (link.title or _("Shared conversation"))[:200]
    now = timezone.now()
    with transaction.atomic():
        conversation.save()
        copies = []
        for item in link.snapshot:
            created_at = parse_datetime(item.get("created_at") or "") or now
            response_format = item.get("response_format")
            copies.append(
                Message(
                    conversation=conversation,
                    imported=True,
                    role=item["role"],
                    content=item.get("content", ""),
                    model=item.get("model", ""),
                    status=item.get("status") or Status.COMPLETE,
                    parameters={"response_format": response_format} if response_format else None,
                    created_at=created_at,
                    selected_at=created_at,
                )
            )
        Message.objects.bulk_create(copies)
        # One path: each message follows the one before it.
        for index, copy in enumerate(copies):
            copy.parent_id = copies[index - 1].pk if index else None
        Message.objects.bulk_update(copies, ["parent"])
    return conversation
