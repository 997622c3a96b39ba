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


def answered_in_two_windows(chat):
    """A conversation with one answer ("Hello there"), and a second window on it."""
    page = chat()
    send(page, "Hello there")
    wait_for_status(page, "complete")
    return page, another_window(page)


def test_a_conversation_archived_in_another_window_says_so_there_until_a_message(chat):
    page, other = answered_in_two_windows(chat)
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

    # Archived, it leaves the sidebar of the other window too, as a reload would show it.
    nav.get_by_label("Options for Hello there").click()
    nav.get_by_role("button", name="Archive", exact=True).click()
    expect(note).to_be_visible()
    expect(item).to_have_count(0)

    # A message takes it back to the sidebar: the note goes in every window.
    send(other, "Back to it")
    expect(note).to_be_hidden()
    expect(page.get_by_text("This conversation is archived.")).to_be_hidden()
    expect(item.locator("[data-archive-button]")).to_have_text("Archive")
    expect(nav.locator(f'[data-conversation-id="{page.conversation.pk}"]')).to_have_count(1)
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
    titles = elsewhere.locator("#conversation-nav .conversation-title")
    expect(titles).to_have_text(["Other plans", "Hello there"])
    item = elsewhere.locator(f'.conversation-item[data-conversation-id="{page.conversation.pk}"]')

    nav = page.get_by_role("navigation", name="Conversations")
    nav.get_by_label("Options for Hello there").click()
    nav.locator('input[name="title"]').first.fill("Greetings")
    nav.get_by_role("button", name="Rename").first.click()
    expect(item.locator("[data-title]")).to_have_text("Greetings")
    # Its own heading is its own conversation's still.
    expect(elsewhere.get_by_role("heading", level=1)).to_have_text("Other plans")

    # Pinned, it goes to the top there; archived, it leaves that sidebar.
    nav.get_by_label("Options for Greetings").click()
    nav.get_by_role("button", name="Pin", exact=True).click()
    expect(titles).to_have_text(["Greetings", "Other plans"])
    expect(item.locator(".pin-mark")).to_be_visible()
    nav.get_by_label("Options for Greetings").click()
    nav.get_by_role("button", name="Archive", exact=True).click()
    expect(titles).to_have_text(["Other plans"])
    expect(elsewhere.get_by_text("This conversation is archived.")).to_be_hidden()
    elsewhere.context.close()


def test_a_new_conversation_appears_in_the_sidebar_of_another_window(chat):
    page, other = answered_in_two_windows(chat)
    titles = other.locator("#conversation-nav .conversation-title")
    expect(titles).to_have_text(["Hello there"])
    # A new chat in the first window: once its first message is sent, the other lists it.
    page.goto(page.url.split("/c/")[0] + "/c/new/")
    wait_until_ready(page)
    send(page, "Plans for the weekend")
    wait_for_status(page, "complete")
    expect(titles).to_have_text(["Plans for the weekend", "Hello there"])
    other.context.close()


def test_two_moves_in_a_row_leave_the_sidebar_as_the_last_one_says(chat):
    """The lists read again after each move arrive in any order: only the last asked for is
    shown (the list after the pin, answered late, used to put the archived item back)."""
    page, other = answered_in_two_windows(chat)
    held = []

    def hold_the_first(route):
        if held:
            route.continue_()
        else:  # answered by the server now, handed to the page later
            held.append((route, route.fetch()))

    other.route("**/c/list/**", hold_the_first)
    item = other.locator(f'#conversation-nav [data-conversation-id="{page.conversation.pk}"]')
    nav = page.get_by_role("navigation", name="Conversations")
    nav.get_by_label("Options for Hello there").click()
    nav.get_by_role("button", name="Pin", exact=True).click()
    expect(item.locator(".pin-mark")).to_be_visible()  # marked at once; its list held
    nav.get_by_label("Options for Hello there").click()
    nav.get_by_role("button", name="Archive", exact=True).click()
    expect(item).to_have_count(0)
    with other.expect_response("**/c/list/**") as late:
        route, answer = held[0]
        route.fulfill(response=answer)
    late.value.finished()
    # Its text read and shown, or dropped: a turn of the page's event loop.
    other.evaluate("() => new Promise((done) => setTimeout(done))")
    expect(item).to_have_count(0)
    other.context.close()
