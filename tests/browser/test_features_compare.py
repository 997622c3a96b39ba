"""Compare in the browser: one prompt, answered at once in columns side by side, each answer a
conversation of its own in the sidebar."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation, Persona
from tests.browser.helpers import wait_until_ready

pytestmark = pytest.mark.browser


def test_a_compare_of_three_personas_streams_side_by_side(login):
    page = login()
    page.goto("/")
    page.get_by_role("link", name="Compare").click()
    wait_until_ready(page)
    # The first three personas are chosen to start with.
    chosen = list(Persona.objects.active().order_by("position")[:3])
    for persona in chosen:
        expect(
            page.get_by_role("checkbox", name=persona.display_name("en"), exact=False)
        ).to_be_checked()
    page.get_by_role("textbox", name="Message").fill("Soup for a cold day? [[sim:tps=12]]")
    page.get_by_role("button", name="Compare answers").click()
    page.wait_for_url(re.compile(r"/compare/view/\?c="))
    columns = page.locator(".compare-column")
    expect(columns).to_have_count(3)
    for column, persona in zip(columns.all(), chosen, strict=True):
        expect(column.locator(".column-head h2")).to_contain_text(persona.display_name("en"))
        expect(column.locator('.message[data-role="user"] .content')).to_have_text(
            "Soup for a cold day? [[sim:tps=12]]"
        )

    # All three are being written at the same moment, each with text already.
    page.wait_for_function(
        """() => {
            const replies = [...document.querySelectorAll(
                '.compare-column .message[data-role="assistant"]'
            )];
            return replies.length === 3 && replies.every((r) =>
                r.dataset.status === 'streaming'
                && r.querySelector('.content').innerText.length > 10
            );
        }"""
    )
    expect(page.locator(".compare-column .column-stop").first).to_be_visible()
    page.wait_for_function(
        """() => [...document.querySelectorAll('.compare-column .message[data-role="assistant"]')]
            .every((r) => r.dataset.status === 'complete')""",
        timeout=30_000,
    )
    # Editing and retrying belong to the chat ("Open as a chat"), not to a column.
    edits = page.locator('.compare-column .tool[data-action="edit"]')
    expect(edits).to_have_count(6)  # the question's and the answer's, in each column
    for edit in edits.all():
        expect(edit).to_be_hidden()

    # Each answer is a conversation of its own, in the sidebar.
    nav = page.get_by_role("navigation", name="Conversations")
    for persona in chosen:
        expect(
            nav.get_by_role("link", name=re.compile(re.escape(persona.display_name("en"))))
        ).to_be_visible()
    assert Conversation.objects.filter(user=page.user).count() == 3
    columns.nth(1).get_by_role("link", name="Open as a chat").click()
    page.wait_for_url(re.compile(r"/c/[0-9a-f-]+/$"))
    expect(page.locator('#messages > [data-role="assistant"]')).to_have_attribute(
        "data-status", "complete"
    )


def test_one_persona_at_several_temperatures_and_a_stop_in_one_column(login):
    page = login()
    page.goto("/compare/")
    wait_until_ready(page)
    page.get_by_label("One persona at several temperatures").check()
    expect(page.locator(".compare-personas")).to_be_hidden()
    page.get_by_role("textbox", name="Temperatures").fill("0.2, 1.5")
    page.get_by_role("textbox", name="Message").fill("A long story [[sim:tps=8,tokens=200]]")
    page.get_by_role("button", name="Compare answers").click()
    page.wait_for_url(re.compile(r"/compare/view/"))
    columns = page.locator(".compare-column")
    expect(columns).to_have_count(2)
    expect(columns.nth(0).locator(".column-temperature")).to_have_text("temperature 0.2")
    expect(columns.nth(1).locator(".column-temperature")).to_have_text("temperature 1.5")
    first_reply = columns.nth(0).locator('.message[data-role="assistant"]')
    expect(first_reply).to_have_attribute("data-status", "streaming")
    columns.nth(0).get_by_role("button", name="Stop").click()
    expect(first_reply).to_have_attribute("data-status", "stopped")
    # The other column goes on.
    expect(columns.nth(1).locator('.message[data-role="assistant"]')).to_have_attribute(
        "data-status", "streaming"
    )
    columns.nth(1).get_by_role("button", name="Stop").click()
    expect(columns.nth(1).locator('.message[data-role="assistant"]')).to_have_attribute(
        "data-status", "stopped"
    )


def test_four_columns_fit_a_laptop_screen_and_their_chats_are_told_apart(login):
    """At 1280 px the fourth column was clipped, and the sidebar cut the titles before the
    part that tells the compared answers apart."""
    page = login(viewport={"width": 1280, "height": 800})
    page.goto("/compare/")
    wait_until_ready(page)
    personas = list(Persona.objects.active().order_by("position")[:4])
    for persona in personas:
        page.get_by_role("checkbox", name=persona.display_name("en"), exact=False).check()
    page.get_by_role("textbox", name="Message").fill(
        "A long question about soup on a cold and rainy day [[sim:tps=50]]"
    )
    page.get_by_role("button", name="Compare answers").click()
    page.wait_for_url(re.compile(r"/compare/view/\?c="))
    columns = page.locator(".compare-column")
    expect(columns).to_have_count(4)
    width = page.viewport_size["width"]
    for column in columns.all():
        box = column.bounding_box()
        assert box["x"] + box["width"] <= width + 1, "a column reaches past the window"
    nav = page.get_by_role("navigation", name="Conversations")
    for persona in personas:
        expect(
            nav.get_by_role("link", name=re.compile(re.escape(persona.display_name("en") + " · ")))
        ).to_have_count(1)
