"""No script runs from a persona's name or description, a conversation's title (stored, or set
live from a first message), as a real browser shows them."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations import services
from conversations.models import Persona
from tests.browser.helpers import send, wait_for_status, wait_until_ready

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=alert('t')><script>alert('s')</script>"

# Everything in the document that could run: legitimate scripts have a src or carry JSON.
RUNNABLE = """() => {
    const bad = [];
    for (const el of document.querySelectorAll("*")) {
        for (const attr of el.attributes) {
            if (attr.name.startsWith("on")) bad.push(`${el.tagName} ${attr.name}`);
            if (/^\\s*javascript:/i.test(attr.value)) bad.push(`${el.tagName} ${attr.name}`);
        }
        if (el.tagName === "SCRIPT" && !el.src && el.type !== "application/json") {
            bad.push("inline SCRIPT");
        }
        if (["IMG", "IFRAME", "OBJECT", "EMBED"].includes(el.tagName) && !el.closest(".content")) {
            bad.push(el.tagName);
        }
    }
    return bad;
}"""


def watch_dialogs(page) -> list[str]:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    return dialogs


def test_hostile_persona_and_title_run_nothing_on_any_page(login):
    """Without escaping, the persona picker, the badge, the sidebar and the page title would
    each turn these names into elements that run."""
    page = login()
    dialogs = watch_dialogs(page)
    persona = Persona.objects.create(
        name=HOSTILE[:80], name_en=HOSTILE[:80], description=HOSTILE, emoji="<b>", is_active=True
    )
    conversation = services.start_conversation(user=page.user, persona=persona)
    services.rename_conversation(user=page.user, conversation_id=conversation.pk, title=HOSTILE)
    for path in [f"/c/{conversation.pk}/", "/c/new/", "/c/list/?q=alert"]:
        page.goto(path)
        if path != "/c/list/?q=alert":
            wait_until_ready(page)
        assert page.evaluate(RUNNABLE) == [], path
    page.goto(f"/c/{conversation.pk}/")
    expect(page.locator("#chat-title")).to_have_text(HOSTILE)
    assert dialogs == []


def test_a_title_set_live_from_a_hostile_first_message_runs_nothing(login):
    """The title a new conversation takes from its first message reaches open tabs over the
    socket (`conversation.updated`) and is written into the page there."""
    page = login()
    dialogs = watch_dialogs(page)
    conversation = services.start_conversation(user=page.user)
    page.goto(f"/c/{conversation.pk}/")
    send(page, HOSTILE)
    wait_for_status(page, "complete")
    expect(page.locator("#chat-title")).to_contain_text("<img src=x")
    page.wait_for_timeout(200)
    assert page.evaluate(RUNNABLE) == []
    assert dialogs == []
