"""A long conversation pages in as one scrolls up, marks what the model no longer saw and lets
the reader jump back down; the settings panel saves, shows on the next reply and resets."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations import services
from conversations.models import Conversation, Message, Role, Status
from tests.browser.helpers import last_reply, send, wait_for_status
from tests.paths import bulk_append

pytestmark = pytest.mark.browser


def test_a_long_conversation_pages_in_on_scroll_up(login):
    page = login()
    conversation = services.start_conversation(user=page.user)
    bulk_append(
        Message(
            conversation=conversation,
            role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
            content=f"Message number {i}",
            status=Status.COMPLETE,
        )
        for i in range(130)
    )
    ids = list(conversation.messages.values_list("id", flat=True))
    # The latest reply saw only the last 30 messages.
    Message.objects.filter(pk=ids[-1]).update(context_from_id=ids[100])

    page.goto(f"/c/{conversation.pk}/")
    messages = page.locator("#messages > .message")
    expect(messages).to_have_count(50)
    expect(messages.last).to_contain_text("Message number 129")
    expect(page.get_by_role("button", name="Jump to latest")).to_be_hidden()
    # Messages outside the latest reply's context window say so.
    expect(page.locator(f'[data-id="{ids[99]}"]')).to_have_attribute("data-context", "excluded")
    expect(page.locator(f'[data-id="{ids[99]}"] .excluded-note')).to_be_visible()
    expect(page.locator(f'[data-id="{ids[100]}"]')).not_to_have_attribute(
        "data-context", "excluded"
    )

    scroller = page.locator("#scroller")
    scroller.evaluate("el => el.scrollTo(0, 0)")
    expect(messages).to_have_count(100)
    expect(page.get_by_role("button", name="Jump to latest")).to_be_visible()
    # The message the reader looked at stays in view: the list grew above it.
    assert scroller.evaluate("el => el.scrollTop") > 0
    expect(page.locator(f'[data-id="{ids[40]}"]')).to_have_attribute("data-context", "excluded")

    scroller.evaluate("el => el.scrollTo(0, 0)")
    expect(messages).to_have_count(130)
    expect(messages.first).to_contain_text("Message number 0")
    expect(page.locator("#older")).to_be_hidden()

    page.get_by_role("button", name="Jump to latest").click()
    expect(page.get_by_role("button", name="Jump to latest")).to_be_hidden()
    page.wait_for_function(
        "() => { const s = document.getElementById('scroller');"
        " return s.scrollHeight - s.scrollTop - s.clientHeight < 5; }"
    )


def test_settings_are_saved_shown_on_the_next_reply_and_reset(login):
    page = login()
    conversation = services.start_conversation(user=page.user)
    page.goto(f"/c/{conversation.pk}/")
    page.get_by_role("button", name="Settings").click()
    panel = page.get_by_role("complementary", name="Conversation settings")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("Low values (around 0.3) give consistent, factual answers")
    panel.get_by_label("Temperature").fill("1.5")
    expect(panel.locator("output")).to_have_text("1.5")
    panel.get_by_label("Max tokens").fill("300")
    panel.get_by_label("System prompt").fill("You are a terse pirate.")
    panel.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status").filter(has_text="Settings saved")).to_be_visible()
    conversation.refresh_from_db()
    assert (conversation.temperature, conversation.max_completion_tokens) == (1.5, 300)
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")

    send(page, "Ahoy?")
    wait_for_status(page, "complete")
    expect(last_reply(page)).to_contain_text("You are a terse pirate")
    last_reply(page).get_by_text("Parameters").click()
    parameters = last_reply(page).locator("details.parameters")
    expect(parameters).to_contain_text("Temperature1.5")
    expect(parameters).to_contain_text("Max tokens300")

    # Saved in place: the panel stays open. A refused form shows the reason beside the field.
    expect(panel).to_be_visible()
    panel.get_by_label("Alternatives per token").fill("2")
    panel.get_by_role("button", name="Save settings").click()
    expect(panel).to_contain_text("Turn on token confidence to show alternatives.")
    panel.get_by_label("Alternatives per token").fill("0")

    panel.get_by_role("button", name="Reset: new chat with these settings").click()
    page.wait_for_url(lambda url: str(conversation.pk) not in url)
    fresh = Conversation.objects.exclude(pk=conversation.pk).get()
    assert fresh.temperature == 1.5 and fresh.system_prompt == "You are a terse pirate."
    expect(page.locator("#messages > .message")).to_have_count(0)


def test_after_saving_the_settings_the_keyboard_is_where_it_was(login):
    """Save keeps the focus on its button: Escape then closes the panel, back to Settings."""
    page = login()
    conversation = services.start_conversation(user=page.user)
    page.goto(f"/c/{conversation.pk}/")
    page.get_by_role("button", name="Settings").click()
    panel = page.get_by_role("complementary", name="Conversation settings")
    panel.get_by_label("System prompt").fill("Be brief.")
    save = panel.get_by_role("button", name="Save settings")
    save.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Settings saved")).to_be_visible()
    expect(save).to_be_focused()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(page.get_by_role("button", name="Settings")).to_be_focused()


def test_a_conversations_menu_closes_on_escape_and_on_a_click_elsewhere(login):
    page = login()
    conversation = services.start_conversation(user=page.user)
    services.rename_conversation(user=page.user, conversation_id=conversation.pk, title="Menus")
    page.goto(f"/c/{conversation.pk}/")
    nav = page.get_by_role("navigation", name="Conversations")
    menu = nav.locator("details.item-menu")
    nav.get_by_label("Options for Menus").click()
    expect(menu).to_have_attribute("open", "")
    page.keyboard.press("Escape")
    expect(menu).not_to_have_attribute("open", "")
    expect(nav.get_by_label("Options for Menus")).to_be_focused()

    nav.get_by_label("Options for Menus").click()
    expect(menu).to_have_attribute("open", "")
    page.get_by_role("textbox", name="Message").click()
    expect(menu).not_to_have_attribute("open", "")


def test_pinning_puts_a_conversation_on_top(login):
    page = login()
    first = services.start_conversation(user=page.user)
    services.rename_conversation(user=page.user, conversation_id=first.pk, title="Keep me")
    second = services.start_conversation(user=page.user)
    services.rename_conversation(user=page.user, conversation_id=second.pk, title="Newer")
    page.goto(f"/c/{second.pk}/")
    nav = page.get_by_role("navigation", name="Conversations")
    titles = nav.locator(".conversation-title")
    expect(titles).to_have_text(["Newer", "Keep me"])
    nav.get_by_label("Options for Keep me").click()
    nav.get_by_role("button", name="Pin", exact=True).click()
    expect(nav.locator(".group-label").first).to_have_text("Pinned")
    expect(titles).to_have_text(["Keep me", "Newer"])
    expect(nav.locator("[data-pinned] .conversation-title")).to_have_text("Keep me")


def test_the_chat_works_at_phone_width(login):
    page = login(viewport={"width": 390, "height": 844})
    conversation = services.start_conversation(user=page.user)
    page.goto(f"/c/{conversation.pk}/")
    send(page, "Hello from a phone " + "with a long line " * 10)
    wait_for_status(page, "complete")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    nav = page.locator("#conversation-nav")
    expect(nav).to_be_hidden()
    page.get_by_role("button", name="Menu", exact=True).click()
    expect(nav).to_be_visible()
    expect(nav).to_be_in_viewport()
    expect(page.get_by_role("searchbox", name="Search conversations")).to_be_focused()
    page.keyboard.press("Escape")
    expect(nav).to_be_hidden()
    expect(page.get_by_role("textbox", name="Message")).to_be_in_viewport()
