"""A conversation deleted while other tabs hold it open: they close their socket and say it is
gone, and a message sent there meanwhile is refused with its client id, so the page gives it
back to the box instead of losing it."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async

from conversations import services

from .test_session_end_closes_sockets import closed_with, logged_in, open_tab

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_deleting_a_conversation_closes_its_other_tabs(owner, conversation):
    browser, cookie = await logged_in(owner)
    tabs = [await open_tab(conversation.pk, cookie) for _ in range(2)]

    response = await browser.post(f"/c/{conversation.pk}/delete/")
    assert response.status_code == 302

    for tab in tabs:
        assert await closed_with(tab) == 4404


async def test_a_message_to_a_conversation_gone_meanwhile_is_refused_with_its_client_id(
    owner, conversation
):
    """Before, the refusal named no client id and the page dropped the message."""
    _, cookie = await logged_in(owner)
    tab = await open_tab(conversation.pk, cookie)
    # Deleted without a word to the tabs (as by a process that could not reach them).
    await database_sync_to_async(services.delete_conversation)(
        user=owner, conversation_id=conversation.pk
    )

    client_id = uuid.uuid4().hex
    await tab.send_json_to({"type": "message.send", "client_id": client_id, "content": "Hi?"})
    frame = await tab.receive_json_from(timeout=5)
    assert frame["type"] == "error" and frame["code"] == "not_found", frame
    assert frame["client_id"] == client_id
    await tab.disconnect()
