"""👍 / 👎 under a written answer: pressed, it is saved and stays pressed after a reload; pressed
again, it is taken back; the other one replaces it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations.models import Message, Role
from tests.browser.helpers import another_window, last_reply, send, wait_for_status

pytestmark = pytest.mark.browser


def press(page, name: str) -> str:
    """Press a rating button of the last answer; the rating saved once the server answered."""
    with page.expect_response("**/rating/") as saved:
        last_reply(page).get_by_role("button", name=name).click()
    assert saved.value.ok
    answer = Message.objects.filter(conversation=page.conversation, role=Role.ASSISTANT).get()
    return answer.rating


def pressed(page, name: str):
    return expect(last_reply(page).get_by_role("button", name=name))


def test_an_answer_is_rated_from_its_buttons(chat):
    page = chat()
    send(page, "Hello there")
    wait_for_status(page, "complete")
    pressed(page, "Good answer").to_have_attribute("aria-pressed", "false")

    assert press(page, "Good answer") == "good"
    pressed(page, "Good answer").to_have_attribute("aria-pressed", "true")

    page.reload()
    pressed(page, "Good answer").to_have_attribute("aria-pressed", "true")

    assert press(page, "Bad answer") == "bad"
    pressed(page, "Bad answer").to_have_attribute("aria-pressed", "true")
    pressed(page, "Good answer").to_have_attribute("aria-pressed", "false")

    # Pressed again: taken back.
    assert press(page, "Bad answer") == ""
    pressed(page, "Bad answer").to_have_attribute("aria-pressed", "false")


def test_the_buttons_wait_for_the_answer_to_be_written(chat):
    page = chat()
    send(page, "Hello there")
    wait_for_status(page, "complete")
    # A live answer (built by the page's script) has them as a loaded one does.
    expect(last_reply(page).get_by_role("button", name="Bad answer")).to_be_visible()
    send(page, "Tell me more [[sim:tps=5]]")
    wait_for_status(page, "streaming")
    expect(last_reply(page).get_by_role("button", name="Good answer")).to_be_hidden()


def test_a_rating_shows_in_the_conversations_other_tabs(chat):
    """Before, another tab of the conversation showed the answer unrated until it was
    reloaded."""
    page = chat()
    send(page, "Hello there")
    wait_for_status(page, "complete")
    other = another_window(page)

    assert press(page, "Good answer") == "good"
    expect(last_reply(other).get_by_role("button", name="Good answer")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert press(page, "Good answer") == ""
    expect(last_reply(other).get_by_role("button", name="Good answer")).to_have_attribute(
        "aria-pressed", "false"
    )
    other.context.close()
