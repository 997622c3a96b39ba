"""A conversation deleted in one window while another shows it: the other says it is gone at
once, and a message typed there stays in its box."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import another_window, send, wait_for_status

pytestmark = pytest.mark.browser


def test_a_conversation_deleted_in_another_window_says_so_and_keeps_the_draft(chat):
    page = chat()
    send(page, "Hello there")
    wait_for_status(page, "complete")
    other = another_window(page)

    page.goto(f"/c/{page.conversation.pk}/delete/")
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Conversation deleted.")).to_be_visible()

    status = other.locator("#connection-status")
    expect(status).to_have_attribute("data-state", "closed")
    expect(status).to_contain_text("This conversation does not exist any more.")
    box = other.get_by_role("textbox", name="Message")
    box.fill("A thought I do not want to lose")
    box.press("Enter")
    expect(box).to_have_value("A thought I do not want to lose")
    other.context.close()
