"""Token confidence drawn on the page (heatmap, summary, a token's probability on hover and on
keyboard focus), JSON replies marked when they do not parse, and the tokens a chat used."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations import services
from conversations.models import Message, Role
from tests.browser.helpers import last_reply, send, wait_for_status

pytestmark = pytest.mark.browser


@pytest.fixture
def chat(login):
    def open_chat(**values):
        page = login()
        conversation = services.start_conversation(user=page.user)
        if values:
            services.update_conversation_settings(
                user=page.user, conversation_id=conversation.pk, values=values
            )
        page.goto(f"/c/{conversation.pk}/")
        expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
        page.conversation = conversation
        return page

    return open_chat


def percent(p: str) -> str:
    return f"{int(float(p) * 100 + 0.5)}%"


def check_hover(page) -> None:
    reply = last_reply(page)
    toggle = reply.get_by_role("button", name="Heatmap")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(reply.locator(".heatmap")).to_be_visible()
    expect(reply.locator(".content")).to_be_hidden()

    token = reply.locator(".heatmap .token").nth(2)
    token.hover()
    tip = page.get_by_role("tooltip")
    expect(tip).to_be_visible()
    expect(tip.locator(".tip-p")).to_have_text(percent(token.get_attribute("data-p")))
    # The alternatives the model weighed, each with its probability.
    assert tip.locator(".tip-alts li").count() >= 2
    expect(tip.locator(".tip-alts li").first).to_contain_text("%")


def test_hovering_a_token_shows_its_probability_and_alternatives_live_and_on_revisit(chat):
    page = chat(logprobs=True, top_logprobs=3)
    send(page, "Tell me about the sea")
    wait_for_status(page, "complete")
    stored = Message.objects.filter(conversation=page.conversation, role=Role.ASSISTANT).get()
    # Fetched over HTTP once the reply ends (too large for the socket's frames).
    expect(last_reply(page).locator(".heatmap .token")).to_have_count(len(stored.logprobs))
    expect(last_reply(page).locator(".confidence-summary")).to_contain_text("Confidence: mean ")
    expect(last_reply(page).locator(".least-certain .token")).to_have_count(5)
    check_hover(page)

    page.reload()
    check_hover(page)


def test_a_token_can_be_reached_and_read_from_the_keyboard(chat):
    page = chat(logprobs=True, top_logprobs=2)
    send(page, "Hello there")
    wait_for_status(page, "complete")
    reply = last_reply(page)
    reply.get_by_role("button", name="Heatmap").click()
    # Back from the toggle: the parameters, 👎, 👍, Branch, Edit, Read aloud, Copy, then the
    # heatmap (one tab stop for all its tokens).
    for _ in range(8):
        page.keyboard.press("Shift+Tab")
    tokens = reply.locator(".heatmap .token")
    expect(tokens.first).to_be_focused()
    tip = page.get_by_role("tooltip")
    expect(tip.locator(".tip-p")).to_have_text(percent(tokens.first.get_attribute("data-p")))
    expect(tokens.first).to_have_attribute("aria-describedby", "token-tip")

    page.keyboard.press("ArrowRight")
    expect(tokens.nth(1)).to_be_focused()
    expect(tip.locator(".tip-p")).to_have_text(percent(tokens.nth(1).get_attribute("data-p")))
    page.keyboard.press("Escape")
    expect(tip).to_be_hidden()
    # The least certain tokens are in the tab order too.
    chip = reply.locator(".least-certain .token").first
    chip.focus()
    expect(tip).to_be_visible()
    expect(tip.locator(".tip-p")).to_have_text(percent(chip.get_attribute("data-p")))


def test_an_invalid_json_reply_is_marked_live_and_after_a_reload(chat):
    page = chat(
        response_format="json_object",
        system_prompt="Answer with a JSON object.",
        max_completion_tokens=8,
    )
    send(page, "Three colours please")
    wait_for_status(page, "truncated")
    reply = last_reply(page)
    expect(reply).to_have_attribute("data-json", "invalid")
    expect(reply.locator(".json-note")).to_have_text("Not valid JSON: shown as the model wrote it.")
    raw = reply.locator(".content code.json-raw")
    stored = Message.objects.filter(conversation=page.conversation, role=Role.ASSISTANT).get()
    assert raw.inner_text() == stored.content

    page.reload()
    expect(last_reply(page)).to_have_attribute("data-json", "invalid")
    expect(last_reply(page).locator(".json-note")).to_be_visible()
    assert last_reply(page).locator(".content code.json-raw").inner_text() == stored.content


def test_a_valid_json_reply_is_not_marked(chat):
    page = chat(response_format="json_object", system_prompt="Answer with a JSON object.")
    send(page, "Three colours please")
    wait_for_status(page, "complete")
    expect(last_reply(page)).to_have_attribute("data-json", "valid")
    expect(last_reply(page).locator(".json-note")).to_be_hidden()


def test_the_tokens_of_each_reply_and_of_the_chat_are_shown_and_kept_current(chat):
    page = chat()
    usage = page.locator(".chat-header .conversation-usage")
    # Nothing used yet: nothing shown, not "0 tokens".
    expect(usage).to_be_hidden()
    expect(usage).to_have_text("")
    send(page, "Count my tokens")
    wait_for_status(page, "complete")

    def stored_total() -> tuple[int, int]:
        replies = Message.objects.filter(conversation=page.conversation, role=Role.ASSISTANT)
        return (
            sum(m.prompt_tokens for m in replies),
            sum(m.completion_tokens for m in replies),
        )

    first = Message.objects.get(conversation=page.conversation, role=Role.ASSISTANT)
    expect(last_reply(page).locator(".usage")).to_have_text(
        f"{first.prompt_tokens + first.completion_tokens} tokens "
        f"({first.prompt_tokens} in · {first.completion_tokens} out)"
    )
    prompt, completion = stored_total()
    expect(usage).to_be_visible()
    expect(usage).to_have_text(f"{prompt + completion} tokens ({prompt} in · {completion} out)")

    send(page, "And once more, longer [[sim:tokens=80]]")
    page.wait_for_function(
        "() => document.querySelectorAll('#messages > [data-role=assistant]').length === 2"
    )
    wait_for_status(page, "complete")
    prompt, completion = stored_total()
    expect(usage).to_have_text(
        f"{prompt + completion:,} tokens ({prompt:,} in · {completion:,} out)"
    )
    # Regenerating adds a version: the earlier answer's tokens stay counted, the new one's add.
    replaced = last_reply(page).get_attribute("data-id")
    page.get_by_role("button", name="Regenerate").click()
    page.wait_for_function(
        """(old) => {
            const all = document.querySelectorAll('#messages > [data-role="assistant"]');
            const last = all[all.length - 1];
            return Number(last.dataset.id) > Number(old) && last.dataset.status === "complete";
        }""",
        arg=replaced,
    )
    prompt, completion = stored_total()
    expect(usage).to_have_text(
        f"{prompt + completion:,} tokens ({prompt:,} in · {completion:,} out)"
    )
