"""The admin lists every share link and revokes the ones it selects."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversations import services, sharing
from conversations.models import ShareLink

pytestmark = pytest.mark.django_db


def test_the_admin_revokes_selected_links(client, admin_user, owner, personas):
    conversation = services.start_conversation(user=owner)
    link = sharing.share_conversation(user=owner, conversation_id=conversation.pk)
    client.force_login(admin_user)
    listing = client.get(reverse("admin:conversations_sharelink_changelist"))
    assert listing.status_code == 200
    response = client.post(
        reverse("admin:conversations_sharelink_changelist"),
        {"action": "revoke", "_selected_action": [link.pk]},
    )
    assert response.status_code == 302
    assert ShareLink.objects.get().revoked_at is not None
    assert client.get(reverse("shared", args=[link.token])).status_code == 404
