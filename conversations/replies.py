"""A reply's life: the task that streams it, batched saves, statuses, leases, group events."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Message, Status


def sweep_orphaned_replies(conversation_id: object | None = None) -> int:
    """Mark replies left `streaming` by a process that died as `interrupted`.

    A live reply renews its lease while it streams; one whose lease ran out has no process
    producing it any more. The filter on status and lease in the UPDATE itself makes this safe
    to run from any process at any time: a reply that finishes meanwhile is not touched.
    """
    now = timezone.now()
    replies = Message.objects.orphaned(now)
    if conversation_id is not None:
        replies = replies.filter(conversation_id=conversation_id)
    return replies.update(
        status=Status.INTERRUPTED,
        finish_reason="",
        error=_("The server stopped while this answer was being written."),
        completed_at=now,
        lease_expires_at=None,
    )
