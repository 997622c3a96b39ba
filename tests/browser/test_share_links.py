"""Share a conversation from its menu and open the link in a browser that is not logged in."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from conversations import services
from conversations.models import Message, Role, Status
from tests.browser.helpers import wait_until_ready

pytestmark = pytest.mark.browser

SHARE_ADDRESS = re.compile(r"^http://[^/]+/s/[A-Za-z0-9_-]{40,}/$")


def test_a_shared_link_opens_read_only_without_logging_in(login, new_context):
    page = login()
    conversation = services.start_conversation(user=page.user)
    services.rename_conversation(user=page.user, conversation_id=conversation.pk, title="Trip")
    Message.objects.create(conversation=conversation, role=Role.USER, content="Where to go?")
    Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="Go to **Busan** for the sea.",
        status=Status.COMPLETE,
    )
    page.goto(f"/c/{conversation.pk}/")
    wait_until_ready(page)
    nav = page.get_by_role("navigation", name="Conversations")
    nav.get_by_label("Options for Trip").click()
    nav.get_by_role("button", name="Share").click()

    link = page.get_by_role("textbox", name="Share link").first
    expect(link).to_have_value(SHARE_ADDRESS)
    expect(page.get_by_role("button", name="Revoke").first).to_be_visible()
    address = link.input_value()

    stranger = new_context().new_page()
    response = stranger.goto(address)
    assert response is not None and response.status == 200
    assert response.headers["x-robots-tag"] == "noindex"
    expect(stranger.locator('#messages > [data-role="user"] .content')).to_have_text("Where to go?")
    expect(stranger.locator('#messages > [data-role="assistant"] strong')).to_have_text("Busan")
    expect(stranger.get_by_role("textbox", name="Message")).to_have_count(0)
    expect(stranger.get_by_role("navigation", name="Conversations")).to_have_count(0)

    page.get_by_role("button", name="Revoke").first.click()
    expect(page.get_by_role("textbox", name="Share link")).to_have_count(0)
    # Asked, not shown: the debug server's 404 page has inline styles the CSP refuses.
    assert stranger.request.get(address).status == 404
