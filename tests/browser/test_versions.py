"""Versions and branches in the page: `‹ K / N ›` at a fork, Edit on any message of yours,
Branch into a new conversation; a choice made in one tab is seen in every tab and kept."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation
from tests.browser.helpers import last_reply, normalized, send, wait_for_status

pytestmark = pytest.mark.browser


def exchange(page, text: str) -> None:
    count = page.locator('#messages > [data-role="assistant"]').count()
    send(page, text)
    expect(page.locator('#messages > [data-role="assistant"]')).to_have_count(count + 1)
    wait_for_status(page, "complete")


def user_texts(page) -> list[str]:
    return page.locator('#messages > [data-role="user"] .content').all_inner_texts()


def open_again(page):
    """Another window with the same login, on the same conversation."""
    other = page.context.browser.new_context(storage_state=page.context.storage_state())
    tab = other.new_page()
    tab.goto(page.url)
    expect(tab.locator("#connection-status")).to_have_attribute("data-state", "open")
    return tab


def test_regenerate_then_switch_between_the_two_answers(chat):
    page = chat()
    exchange(page, "Give me an idea")
    first_id = last_reply(page).get_attribute("data-id")
    page.get_by_role("button", name="Regenerate").click()
    expect(last_reply(page)).to_have_attribute("data-version", "2/2")
    wait_for_status(page, "complete")
    second_id = last_reply(page).get_attribute("data-id")

    last_reply(page).get_by_role("button", name="Previous version").click()
    expect(last_reply(page)).to_have_attribute("data-id", first_id)
    expect(last_reply(page)).to_have_attribute("data-version", "1/2")
    expect(last_reply(page).get_by_role("button", name="Previous version")).to_be_disabled()
    # From the keyboard too.
    last_reply(page).get_by_role("button", name="Next version").focus()
    page.keyboard.press("Enter")
    expect(last_reply(page)).to_have_attribute("data-id", second_id)
    expect(page.locator("#messages > .message")).to_have_count(2)


def test_editing_an_earlier_message_branches_and_the_old_branch_comes_back(chat):
    page = chat()
    exchange(page, "First question")
    exchange(page, "Second question")
    first = page.locator('#messages > [data-role="user"]').first
    first.get_by_role("button", name="Edit").click()
    page.get_by_role("textbox", name="Edit message").fill("A better first question")
    page.get_by_role("button", name="Save and send").click()
    expect(page.locator("#messages > .message")).to_have_count(2)
    wait_for_status(page, "complete")
    assert user_texts(page) == ["A better first question"]
    expect(page.locator('#messages > [data-role="user"]')).to_have_attribute("data-version", "2/2")
    expect(last_reply(page)).to_contain_text("A better first question")

    page.locator('#messages > [data-role="user"]').get_by_role(
        "button", name="Previous version"
    ).click()
    expect(page.locator("#messages > .message")).to_have_count(4)
    assert user_texts(page) == ["First question", "Second question"]


def test_a_switch_in_one_tab_is_seen_in_another_and_kept_by_a_reload(chat):
    page = chat()
    exchange(page, "Tell me something")
    first_id = last_reply(page).get_attribute("data-id")
    page.get_by_role("button", name="Regenerate").click()
    expect(last_reply(page)).to_have_attribute("data-version", "2/2")
    wait_for_status(page, "complete")
    other = open_again(page)
    expect(last_reply(other)).to_have_attribute("data-version", "2/2")

    last_reply(page).get_by_role("button", name="Previous version").click()
    expect(last_reply(other)).to_have_attribute("data-id", first_id)
    expect(last_reply(other)).to_have_attribute("data-version", "1/2")
    other.context.close()

    page.reload()
    expect(last_reply(page)).to_have_attribute("data-id", first_id)
    expect(last_reply(page)).to_have_attribute("data-version", "1/2")


def test_branch_opens_a_new_conversation_with_the_path_up_to_a_message(chat):
    page = chat()
    exchange(page, "Keep this question")
    exchange(page, "Leave this one")
    page.locator('#messages > [data-role="assistant"]').first.get_by_role(
        "button", name="Branch"
    ).click()
    page.wait_for_url(lambda url: page.conversation.pk.hex not in url.replace("-", ""))
    expect(page.locator("#messages > .message")).to_have_count(2)
    assert user_texts(page) == ["Keep this question"]
    assert Conversation.objects.filter(user=page.user).count() == 2
    # Every message offers it, every message of yours an Edit, and every answer its own.
    expect(page.get_by_role("button", name="Branch")).to_have_count(2)
    expect(page.get_by_role("button", name="Edit", exact=True)).to_have_count(1)
    expect(page.get_by_role("button", name="Edit answer")).to_have_count(1)


def test_a_branch_from_a_question_offers_its_answer(chat):
    page = chat()
    exchange(page, "Keep this question")
    exchange(page, "Answer me again")
    page.locator('#messages > [data-role="user"]').last.get_by_role("button", name="Branch").click()
    page.wait_for_url(lambda url: page.conversation.pk.hex not in url.replace("-", ""))
    expect(page.locator("#messages > .message")).to_have_count(3)
    regenerate = page.locator("#regenerate-button")
    expect(regenerate).to_be_visible()
    regenerate.click()
    wait_for_status(page, "complete")
    expect(page.locator("#messages > .message")).to_have_count(4)
    expect(last_reply(page)).to_contain_text("Answer me again")


def test_an_answer_rewritten_by_the_user_is_a_version_beside_the_models(chat):
    page = chat()
    exchange(page, "How many eggs?")
    answer = page.locator('#messages > [data-role="assistant"]').last
    model_text = normalized(answer.locator(".content").inner_text())
    answer.get_by_role("button", name="Edit answer").click()
    box = answer.get_by_role("textbox", name="Edit answer")
    assert box.input_value().startswith("## ")  # the markdown the model wrote, not its rendering
    box.fill("Use **three** eggs.")
    answer.get_by_role("button", name="Save", exact=True).click()

    answer = page.locator('#messages > [data-role="assistant"]').last
    expect(answer).to_have_attribute("data-version", "2/2")
    expect(answer.locator(".content strong")).to_have_text("three")
    expect(answer.get_by_text("Edited by you")).to_be_visible()
    answer.get_by_role("button", name="Previous version").click()
    answer = page.locator('#messages > [data-role="assistant"]').last
    expect(answer).to_have_attribute("data-version", "1/2")
    expect(answer.get_by_text("Edited by you")).to_be_hidden()
    assert normalized(answer.locator(".content").inner_text()) == model_text
