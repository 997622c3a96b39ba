"""The whole journey of a new user, in one browser: sign up, chat with a persona, watch the
answer arrive, come back to it, keep two conversations apart, and tidy the list."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation, Message, Persona
from tests.browser.helpers import last_reply, send, wait_for_status

pytestmark = pytest.mark.browser


def lengths_while_streaming(page, timeout: float = 15.0) -> set[int]:
    """The lengths the last reply's text had while it was streaming."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = page.evaluate(
            """() => {
                const all = document.querySelectorAll('#messages > [data-role="assistant"]');
                const last = all[all.length - 1];
                if (!last) return null;
                return [last.dataset.status, last.querySelector('.content').innerText.length];
            }"""
        )
        if state and state[0] == "streaming" and state[1]:
            seen.add(state[1])
        if state and state[0] not in ("streaming", None):
            break
        page.wait_for_timeout(40)
    return seen


def test_a_new_user_chats_comes_back_and_tidies_up(new_context, personas_in_db, fast_model):
    page = new_context().new_page()

    # Sign up.
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill("newcomer")
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Password", exact=True).fill("a-long-browser-password")
    page.get_by_label("Password confirmation").fill("a-long-browser-password")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("navigation", name="Conversations")).to_be_visible()

    # Start a chat with a persona; the answer arrives token by token.
    chef = Persona.objects.get(name_en="Chef")
    page.get_by_role("combobox", name="Persona").select_option(str(chef.pk))
    expect(page.get_by_role("radio", name="Chef")).to_be_checked()
    fast_model.config.tokens_per_second = 60
    send(page, "What is a good name for a cat?")
    page.wait_for_url("**/c/*/")
    lengths = lengths_while_streaming(page)
    wait_for_status(page, "complete")
    assert len(lengths) >= 2, f"the reply was never seen growing: {lengths}"
    fast_model.config.tokens_per_second = None
    # The conversation got its title from the first exchange, shown without a reload.
    expect(page.get_by_role("heading", level=1)).to_have_text("What is a good name for a cat?")
    expect(page.get_by_role("navigation", name="Conversations")).to_contain_text(
        "What is a good name for a cat?"
    )
    expect(page.locator(".persona-badge")).to_contain_text("Chef")
    expect(last_reply(page)).to_contain_text("You are an experienced, creative chef")
    expect(last_reply(page)).to_contain_text("You asked: «What is a good name for a cat?»")
    first_url = page.url

    # Reload: the history is there.
    page.reload()
    expect(page.locator('#messages > .message[data-role="user"] .content')).to_have_text(
        ["What is a good name for a cat?"], use_inner_text=True
    )
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    expect(page.get_by_role("heading", level=1)).to_have_text("What is a good name for a cat?")

    # A second conversation, with the default persona.
    page.get_by_role("button", name="New chat").focus()
    page.keyboard.press("Space")
    page.wait_for_url(re.compile(r"/c/new/$"))  # a link, not an empty form: no "?"
    send(page, "Tell me about oolong tea.")
    page.wait_for_url(lambda url: url != first_url and "/c/new/" not in url)
    wait_for_status(page, "complete")
    expect(last_reply(page)).to_contain_text("You asked: «Tell me about oolong tea.»")
    assert "Earlier you said" not in last_reply(page).inner_text()

    # Switch back and continue: the model sees the earlier turns of that conversation only.
    nav = page.get_by_role("navigation", name="Conversations")
    nav.get_by_role("link", name="What is a good name for a cat?").click()
    page.wait_for_url(first_url)
    send(page, "And for a dog?")
    expect(page.locator('#messages > .message[data-role="assistant"]')).to_have_count(2)
    wait_for_status(page, "complete")
    expect(last_reply(page)).to_contain_text("Earlier you said: «What is a good name for a cat?»")
    sent = [m["content"] for m in fast_model.config.requests[-1]["messages"]]
    assert "What is a good name for a cat?" in sent
    assert "Tell me about oolong tea." not in sent

    # Rename it.
    nav.get_by_label("Options for What is a good name for a cat?").click()
    nav.get_by_role("textbox", name="Title").fill("Pet names")
    nav.get_by_role("button", name="Rename").click()
    expect(nav.get_by_role("link", name="Pet names")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Pet names")

    # Search titles and message text.
    search = page.get_by_role("searchbox", name="Search conversations")
    search.fill("oolong")
    expect(nav.get_by_role("link")).to_have_count(1)
    expect(nav.get_by_role("link", name="Tell me about oolong tea.")).to_be_visible()
    search.fill("dog")  # only in a message of "Pet names"
    expect(nav.get_by_role("link")).to_have_count(1)
    expect(nav.get_by_role("link", name="Pet names")).to_be_visible()
    search.fill("")
    expect(nav.get_by_role("link")).to_have_count(2)

    # Delete the tea conversation, after confirming.
    nav.get_by_label("Options for Tell me about oolong tea.").click()
    nav.get_by_role("link", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete “Tell me about oolong tea.”?")
    dialog.get_by_role("button", name="Delete").click()
    expect(nav.get_by_role("link")).to_have_count(1)
    expect(nav.get_by_role("link", name="Pet names")).to_be_visible()
    assert list(Conversation.objects.values_list("title", flat=True)) == ["Pet names"]
    assert Message.objects.filter(conversation__title="Pet names").count() == 4
