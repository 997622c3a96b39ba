"""Controlling a reply from the page: stop, regenerate, edit and resend, retry after a failure,
and what a second tab and a dropped socket see."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from conversations import services
from conversations.models import Message, Role, Status
from simulator.config import Fault
from tests.browser.helpers import (
    another_window,
    last_reply,
    normalized,
    reply_text,
    send,
    wait_for_status,
)

pytestmark = pytest.mark.browser


def wait_for_text(page, minimum: int = 20) -> None:
    page.wait_for_function(
        """(minimum) => {
            const all = document.querySelectorAll('#messages > [data-role="assistant"]');
            const last = all[all.length - 1];
            return last && last.dataset.status === "streaming"
                && last.querySelector(".content").innerText.length >= minimum;
        }""",
        arg=minimum,
    )


def saved_reply(page) -> Message:
    return Message.objects.filter(conversation=page.conversation, role=Role.ASSISTANT).last()


def test_stop_keeps_what_arrived(chat, fast_model):
    page = chat()
    fast_model.config.tokens_per_second = 15
    send(page, "Tell me a long story")
    wait_for_text(page)
    page.get_by_role("button", name="Stop").click()
    wait_for_status(page, "stopped")
    expect(last_reply(page).locator(".status-note")).to_have_text("Stopped. What arrived is kept.")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    reply = saved_reply(page)
    assert reply.status == Status.STOPPED
    assert reply.content
    shown = reply_text(page)
    page.reload()
    assert reply_text(page) == shown


def test_copy_puts_the_answers_markdown_on_the_clipboard(chat, fast_model):
    page = chat(permissions=["clipboard-read", "clipboard-write"])
    fast_model.config.tokens_per_second = 40
    send(page, "Give me a heading, a list and a code block [[sim:tokens=60]]")
    wait_for_text(page, 5)
    # While the answer is being written there is nothing whole to copy yet.
    expect(last_reply(page).get_by_role("button", name="Copy answer")).to_be_hidden()
    wait_for_status(page, "complete")
    reply = saved_reply(page)
    shown = last_reply(page).locator(".content").inner_text()
    assert reply.content.strip() != shown.strip()  # the source, not what the page rendered
    copy = last_reply(page).get_by_role("button", name="Copy answer")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == reply.content
    expect(copy).to_have_text("Copy")
    # The same from the page as the server renders it.
    page.reload()
    page.evaluate("navigator.clipboard.writeText('')")
    last_reply(page).get_by_role("button", name="Copy answer").click()
    expect(last_reply(page).get_by_role("button", name="Copy answer")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == reply.content


def test_escape_stops_the_reply(chat, fast_model):
    page = chat()
    fast_model.config.tokens_per_second = 15
    send(page, "Another long story")
    wait_for_text(page, 5)
    page.keyboard.press("Escape")
    wait_for_status(page, "stopped")
    assert saved_reply(page).status == Status.STOPPED


def test_regenerate_shows_a_new_version_and_keeps_the_earlier_reply(chat):
    page = chat()
    send(page, "Give me an idea")
    wait_for_status(page, "complete")
    first_id = last_reply(page).get_attribute("data-id")
    page.get_by_role("button", name="Regenerate").click()
    expect(page.locator(f'#messages > [data-id="{first_id}"]')).to_have_count(0)
    wait_for_status(page, "complete")
    assert last_reply(page).get_attribute("data-id") != first_id
    expect(page.locator("#messages > .message")).to_have_count(2)
    expect(last_reply(page)).to_have_attribute("data-version", "2/2")
    replies = Message.objects.filter(conversation=page.conversation, role=Role.ASSISTANT)
    assert [str(m.pk) for m in replies] == [first_id, last_reply(page).get_attribute("data-id")]


def test_the_last_message_can_be_edited_and_sent_again_keeping_the_first_text(chat):
    page = chat()
    send(page, "What is the capital of France?")
    wait_for_status(page, "complete")
    user = page.locator('#messages > [data-role="user"]').last
    user.hover()
    user.get_by_role("button", name="Edit").click()
    editor = page.get_by_role("textbox", name="Edit message")
    editor.fill("What is the capital of Italy?")
    page.get_by_role("button", name="Save and send").click()
    expect(user.locator(".content")).to_have_text("What is the capital of Italy?")
    expect(last_reply(page)).to_contain_text("You asked: «What is the capital of Italy?»")
    wait_for_status(page, "complete")
    expect(user).to_have_attribute("data-version", "2/2")
    assert list(
        Message.objects.filter(conversation=page.conversation, role=Role.USER).values_list(
            "content", flat=True
        )
    ) == ["What is the capital of France?", "What is the capital of Italy?"]


def test_a_failed_reply_says_so_and_can_be_retried(chat, fast_model):
    page = chat()
    fast_model.config.fault = Fault.parse("http:500")
    send(page, "Hello?")
    wait_for_status(page, "error")
    reply = last_reply(page)
    expect(reply.get_by_role("alert")).not_to_be_empty()
    expect(reply.locator(".status-note")).to_have_text("The answer failed.")
    fast_model.config.fault = None
    reply.get_by_role("button", name="Retry").click()
    wait_for_status(page, "complete")
    expect(last_reply(page)).to_contain_text("You asked: «Hello?»")


def test_a_second_tab_streams_the_same_reply(chat, fast_model):
    page = chat()
    other = another_window(page)
    fast_model.config.tokens_per_second = 40
    send(page, "Both tabs should see this")
    wait_for_text(other, 10)  # the other tab shows it while it streams
    wait_for_status(page, "complete")
    wait_for_status(other, "complete")
    assert reply_text(other) == reply_text(page)
    expect(other.locator('#messages > [data-role="user"] .content')).to_have_text(
        "Both tabs should see this"
    )
    other.context.close()


class SocketSwitch:
    """Stands between the page and the server's WebSocket (Playwright's routeWebSocket).

    `drop()` closes both sides as a network failure would (1006, as a browser reports it); while
    `blocked`, reconnection attempts fail the same way. Frames flow through untouched
    otherwise, except `reply.ended` frames, which are held while `hold_ended` is set so the
    test can read the text built from deltas alone.
    """

    def __init__(self, page) -> None:
        self.blocked = False
        self.hold_ended = False
        self.held: list[str] = []
        self.routes: list = []
        self.connections = 0
        page.route_web_socket("**/ws/conversations/**", self.handle)

    def handle(self, ws) -> None:
        if self.blocked:
            ws.close(code=1006, reason="network down")
            return
        self.connections += 1
        server = ws.connect_to_server()

        def to_page(message) -> None:
            if self.hold_ended and isinstance(message, str) and '"reply.ended"' in message:
                self.held.append(message)
                return
            ws.send(message)

        server.on_message(to_page)
        ws.on_message(lambda message: server.send(message))
        self.routes.append((ws, server))

    def drop(self) -> None:
        for ws, server in self.routes:
            server.close(code=1001)
            ws.close(code=1006, reason="network down")
        self.routes.clear()

    def release(self) -> None:
        self.hold_ended = False
        for ws, _server in self.routes:
            for message in self.held:
                ws.send(message)
        self.held.clear()


def test_a_dropped_socket_reconnects_and_ends_with_exactly_the_saved_text(chat, fast_model):
    page = chat()
    switch = SocketSwitch(page)
    page.reload()  # the route applies to sockets opened from now on
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
    fast_model.config.tokens_per_second = 40
    switch.hold_ended = True
    send(page, "Keep talking while I drop")
    wait_for_text(page, 10)

    switch.blocked = True
    switch.drop()
    expect(page.locator("#connection-status")).not_to_have_attribute("data-state", "open")
    expect(page.locator("#connection-status")).to_contain_text("Connection lost")
    page.get_by_role("textbox", name="Message").fill("typed while offline")
    page.wait_for_timeout(1200)  # tokens keep coming on the server meanwhile
    switch.blocked = False
    expect(page.locator("#connection-status")).to_have_attribute(
        "data-state", "open", timeout=20_000
    )
    assert switch.connections == 2

    # The reply ends on the server; its end frame is held, so the page shows what it built
    # from the state it caught up with and the deltas after it.
    reply_id = int(last_reply(page).get_attribute("data-id"))
    _wait_until_saved(reply_id)
    assert Message.objects.get(pk=reply_id).status == Status.COMPLETE
    expected_page = page.context.new_page()
    expected_page.goto(page.url)  # the saved text, rendered by the server
    expected = reply_text(expected_page)
    # A background tab gets no animation frames, and the page renders on them.
    expected_page.close()
    page.bring_to_front()
    page.wait_for_function(
        """([id, text]) => {
            const item = document.querySelector(`#messages > [data-id="${id}"]`);
            return item.querySelector(".content").innerText.replace(/\\s+/g, " ").trim() === text;
        }""",
        arg=[reply_id, expected],
    )
    assert normalized(last_reply(page).locator(".content").inner_text()) == expected
    switch.release()
    wait_for_status(page, "complete")
    assert reply_text(page) == expected
    # What was typed while offline is still there.
    expect(page.get_by_role("textbox", name="Message")).to_have_value("typed while offline")


def test_the_offline_notice_goes_once_the_socket_is_back(chat):
    page = chat()
    switch = SocketSwitch(page)
    page.reload()
    status = page.locator("#connection-status")
    expect(status).to_have_attribute("data-state", "open")
    switch.blocked = True
    switch.drop()
    expect(status).not_to_have_attribute("data-state", "open")
    box = page.get_by_role("textbox", name="Message")
    box.fill("sent while offline")
    box.press("Enter")
    error = page.locator("#chat-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("offline")

    switch.blocked = False
    page.evaluate("window.dispatchEvent(new Event('online'))")  # the browser is back online
    expect(status).to_have_attribute("data-state", "open", timeout=20_000)
    expect(error).to_be_hidden()
    expect(box).to_have_value("sent while offline")  # kept, to send again


def _wait_until_saved(reply_id: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Message.objects.filter(pk=reply_id).exclude(status=Status.STREAMING).exists():
            return
        time.sleep(0.1)
    raise AssertionError("the reply never ended")


def test_a_cut_off_reply_is_marked_and_continues_in_the_same_answer(chat):
    page = chat()
    services.update_conversation_settings(
        user=page.user, conversation_id=page.conversation.pk, values={"max_completion_tokens": 8}
    )
    send(page, "Tell me everything")
    wait_for_status(page, "truncated")
    reply = last_reply(page)
    expect(reply.locator(".status-note")).to_have_text("Cut off at the token limit.")
    first_id = reply.get_attribute("data-id")
    before = reply_text(page)
    reply.get_by_role("button", name="Continue").click()
    page.wait_for_function(
        r"""(length) => {
            const all = document.querySelectorAll('#messages > [data-role="assistant"]');
            const last = all[all.length - 1];
            const text = last.querySelector(".content").innerText.replace(/\s+/g, " ").trim();
            return last.dataset.status !== "streaming" && text.length > length;
        }""",
        arg=len(before),
    )
    expect(page.locator('#messages > [data-role="assistant"]')).to_have_count(1)
    assert last_reply(page).get_attribute("data-id") == first_id
    after = reply_text(page)
    assert after.startswith(before[:20]) and len(after) > len(before)
    assert Message.objects.filter(conversation=page.conversation).count() == 2


def test_json_mode_replies_are_pretty_printed_and_confidence_is_shown(chat):
    page = chat()
    services.update_conversation_settings(
        user=page.user,
        conversation_id=page.conversation.pk,
        values={
            "response_format": "json_object",
            "system_prompt": "Answer with a JSON object.",
            "logprobs": True,
            "top_logprobs": 2,
        },
    )
    send(page, "List two colours")
    wait_for_status(page, "complete")
    reply = last_reply(page)
    code = reply.locator(".content code.language-json")
    expect(code).to_be_visible()
    assert "\n  " in code.inner_text()  # indented
    expect(reply.locator(".confidence-summary")).to_contain_text("Confidence: mean")
    tokens = reply.locator(".heatmap .token")
    assert tokens.count() > 3
    assert float(tokens.first.get_attribute("data-p")) > 0
    # The same after a reload, rendered by the server.
    page.reload()
    expect(last_reply(page).locator(".content code.language-json")).to_be_visible()
    assert last_reply(page).locator(".heatmap .token").count() == tokens.count()


# Every socket the page opens, kept where a test can reach it.
RECORD_SOCKETS = """(() => {
    const Native = window.WebSocket;
    window.openedSockets = [];
    window.WebSocket = class extends Native {
        constructor(...args) {
            super(...args);
            window.openedSockets.push(this);
        }
    };
})();"""

LATE_STATE = """(id) => {
    const socket = window.openedSockets[window.openedSockets.length - 1];
    const state = {type: "reply.state", reply_id: id, seq: 1, content: '{"col'};
    state.status = "streaming";
    socket.dispatchEvent(new MessageEvent("message", {data: JSON.stringify(state)}));
}"""


def test_a_live_state_that_comes_after_the_end_does_not_reopen_the_reply(login):
    page = login()
    page.add_init_script(script=RECORD_SOCKETS)
    conversation = services.start_conversation(user=page.user)
    services.update_conversation_settings(
        user=page.user,
        conversation_id=conversation.pk,
        values={"response_format": "json_object", "system_prompt": "Answer with JSON."},
    )
    page.goto(f"/c/{conversation.pk}/")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
    send(page, "List two colours")
    wait_for_status(page, "complete")
    reply = last_reply(page)
    expect(reply.locator(".content code.language-json")).to_be_visible()
    page.evaluate(LATE_STATE, int(reply.get_attribute("data-id")))
    page.wait_for_timeout(500)  # a paint the state would have scheduled has come
    expect(reply.locator(".content code.language-json")).to_be_visible()
    assert reply.locator(".content .json-raw").count() == 0
    assert reply.get_attribute("data-status") == "complete"
    expect(page.locator("#stop-button")).to_be_hidden()


# A browser slow to paint (a busy machine, a background tab): the streaming renderer's next
# paint comes 1.5 s late, after the whole reply has arrived and ended.
SLOW_PAINT = """() => {
    const later = window.setTimeout.bind(window);
    window.requestAnimationFrame = (paint) => later(paint, 1500);
    window.setTimeout = (run, ms, ...args) => later(run, ms === 100 ? 1500 : ms, ...args);
}"""


def test_a_reply_that_ends_before_its_first_paint_keeps_its_final_rendering(chat, fast_model):
    page = chat()
    services.update_conversation_settings(
        user=page.user,
        conversation_id=page.conversation.pk,
        values={"response_format": "json_object", "system_prompt": "Answer with JSON."},
    )
    page.evaluate(SLOW_PAINT)
    send(page, "List two colours")
    wait_for_status(page, "complete")
    page.wait_for_timeout(2000)  # the late paint has come and gone
    content = last_reply(page).locator(".content")
    expect(content.locator("code.language-json")).to_be_visible()
    assert content.locator(".json-raw").count() == 0

    markdown = chat()
    markdown.evaluate(SLOW_PAINT)
    send(markdown, "Explain soup")
    wait_for_status(markdown, "complete")
    markdown.wait_for_timeout(2000)
    content = last_reply(markdown).locator(".content")
    assert content.locator(".md-tail").count() == 0, "no streaming paint over the final one"
    saved = saved_reply(markdown).content
    assert normalized(content.inner_text()).count(normalized(saved.splitlines()[-1])) == 1
