"""Archive from the sidebar's menu: the conversation leaves the list and waits under Archived,
from where Unarchive brings it back."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations import services
from conversations.models import Message, Role
from tests.browser.helpers import another_window, send, wait_for_status, wait_until_ready

pytestmark = pytest.mark.browser


def titled(user, title: str):
    conversation = services.start_conversation(user=user)
    services.rename_conversation(user=user, conversation_id=conversation.pk, title=title)
    Message.objects.create(conversation=conversation, role=Role.USER, content=title)
    return conversation


def test_archive_from_the_menu_and_back(login):
    page = login()
    titled(page.user, "Old plans")
    current = titled(page.user, "Trip")
    page.goto(f"/c/{current.pk}/")
    wait_until_ready(page)
    nav = page.get_by_role("navigation", name="Conversations")

    nav.get_by_label("Options for Old plans").click()
    nav.get_by_role("button", name="Archive", exact=True).click()
    expect(page.get_by_role("status").or_(page.locator(".flash")).first).to_be_attached()
    expect(nav.locator(".conversation-title")).to_have_text(["Trip"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Trip")

    page.get_by_role("link", name="Archived", exact=True).click()
    archived = page.get_by_role("list", name="Archived conversations")
    expect(archived).to_contain_text("Old plans")
    archived.get_by_role("button", name="Unarchive").click()
    expect(page.get_by_text("Nothing is archived.")).to_be_visible()
    expect(nav.locator(".conversation-title")).to_have_text(["Trip", "Old plans"])


@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_sidebars_links_stay_inside_it(login, language):
    page = login(language=language)
    page.goto("/c/new/")
    wait_until_ready(page)
    outside = page.evaluate(
        """() => {
            const sidebar = document.getElementById("sidebar").getBoundingClientRect();
            return [...document.querySelectorAll(".sidebar-links a")]
                .filter((a) => a.getBoundingClientRect().right > sidebar.right)
                .map((a) => a.textContent);
        }"""
    )
    assert outside == []


def test_a_conversation_archived_in_another_window_says_so_there_until_a_message(chat):
    page = chat()
    send(page, "Hello there")
    wait_for_status(page, "complete")
    other = another_window(page)
    note = other.get_by_text("This conversation is archived.")
    expect(note).to_be_hidden()
    nav = page.get_by_role("navigation", name="Conversations")
    other_nav = other.get_by_role("navigation", name="Conversations")
    item = other_nav.locator(f'[data-conversation-id="{page.conversation.pk}"]')

    nav.get_by_label("Options for Hello there").click()
    nav.get_by_role("button", name="Pin", exact=True).click()
    expect(item.locator(".pin-mark")).to_be_visible()
    other_nav.get_by_label("Options for Hello there").click()
    expect(item.get_by_role("button", name="Unpin")).to_be_visible()
    other_nav.get_by_label("Options for Hello there").click()  # closed again

    nav.get_by_label("Options for Hello there").click()
    nav.get_by_role("button", name="Archive", exact=True).click()
    expect(note).to_be_visible()
    expect(item.get_by_text("Archived", exact=True)).to_be_visible()
    other_nav.get_by_label("Options for Hello there").click()
    expect(item.get_by_role("button", name="Unarchive")).to_be_visible()

    # A message takes it back to the sidebar: the note goes in every window.
    send(other, "Back to it")
    expect(note).to_be_hidden()
    page.wait_for_timeout(1500)
    print(
        "URL",
        page.url,
        page.locator("#connection-status").get_attribute("data-state"),
        page.locator("#connection-status").text_content(),
    )
    expect(page.get_by_text("This conversation is archived.")).to_be_hidden()
    expect(item.get_by_role("button", name="Archive", exact=True)).to_be_visible()
    other.context.close()


def test_a_window_on_another_conversation_shows_a_rename_and_an_archive_in_its_sidebar(chat):
    page = chat()
    send(page, "Hello there")
    wait_for_status(page, "complete")
    second = titled(page.user, "Other plans")
    elsewhere = page.context.browser.new_context(
        storage_state=page.context.storage_state()
    ).new_page()
    elsewhere.goto(page.url.split("/c/")[0] + f"/c/{second.pk}/")
    expect(elsewhere.locator("#connection-status")).to_have_attribute("data-state", "open")
    item = elsewhere.locator(f'.conversation-item[data-conversation-id="{page.conversation.pk}"]')
    expect(item.locator("[data-title]")).to_have_text("Hello there")

    nav = page.get_by_role("navigation", name="Conversations")
    nav.get_by_label("Options for Hello there").click()
    nav.locator('input[name="title"]').first.fill("Greetings")
    nav.get_by_role("button", name="Rename").first.click()
    expect(item.locator("[data-title]")).to_have_text("Greetings")
    # Its own heading is its own conversation's still.
    expect(elsewhere.get_by_role("heading", level=1)).to_have_text("Other plans")

    nav.get_by_label("Options for Greetings").click()
    nav.get_by_role("button", name="Archive", exact=True).click()
    expect(item.get_by_text("Archived", exact=True)).to_be_visible()
    expect(elsewhere.get_by_text("This conversation is archived.")).to_be_hidden()
    elsewhere.context.close()
