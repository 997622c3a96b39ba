"""What a new user trips on: the sidebar's Rename and Pin after a search, saving settings in
place, message bars that go away, a long paste, following a sent message on a phone (the
conversation keeping its height while a reply is on its way), and the Korean header and a
persona's emoji at phone width."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from conversations import services
from conversations.models import Message, Persona, ResponseFormat, Role, Status
from tests.browser.helpers import last_reply, send, wait_for_status, wait_until_ready
from tests.paths import bulk_append

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def titled(user, title: str):
    conversation = services.start_conversation(user=user)
    services.rename_conversation(user=user, conversation_id=conversation.pk, title=title)
    return conversation


def search(page, query: str) -> None:
    page.get_by_role("searchbox", name="Search conversations").fill(query)
    expect(page.locator("#conversation-nav")).to_have_attribute("data-query", query)


def lines_of(page, selector: str) -> int:
    """How many lines the text of the first element matching `selector` takes."""
    return page.locator(selector).first.evaluate(
        """el => {
            const range = document.createRange();
            range.selectNodeContents(el);
            const rects = [...range.getClientRects()].filter((r) => r.width > 0);
            const tops = rects.map((r) => Math.round(r.top));
            return new Set(tops).size;
        }"""
    )


def test_rename_and_pin_after_a_search_come_back_to_the_page(login):
    page = login()
    bread = titled(page.user, "Bread plans")
    current = titled(page.user, "Trip")
    page.goto(f"/c/{current.pk}/")
    wait_until_ready(page)
    nav = page.get_by_role("navigation", name="Conversations")

    search(page, "plans")
    expect(nav.locator(".conversation-title")).to_have_text(["Bread plans"])
    nav.get_by_label("Options for Bread plans").click()
    nav.get_by_label("Title").fill("Sourdough plans")
    nav.get_by_role("button", name="Rename").click()
    page.wait_for_load_state()
    address = urlsplit(page.url)
    assert address.path == f"/c/{current.pk}/"
    assert parse_qs(address.query) == {"q": ["plans"]}
    expect(page.get_by_role("heading", level=1)).to_have_text("Trip")
    expect(nav.locator(".conversation-title")).to_have_text(["Sourdough plans"])
    bread.refresh_from_db()
    assert bread.title == "Sourdough plans"

    # Even a search typed and cleared again: the list on the page came from the server alone.
    wait_until_ready(page)
    search(page, "")
    expect(nav.locator(".conversation-title")).to_have_count(2)
    nav.get_by_label("Options for Sourdough plans").click()
    nav.get_by_role("button", name="Pin", exact=True).click()
    expect(nav.locator(".group-label").first).to_have_text("Pinned")
    assert urlsplit(page.url).path == f"/c/{current.pk}/"
    assert urlsplit(page.url).query == ""
    expect(page.get_by_role("heading", level=1)).to_have_text("Trip")


def test_settings_save_in_place_and_show_errors_in_the_panel(login):
    page = login()
    conversation = services.start_conversation(user=page.user)
    page.goto(f"/c/{conversation.pk}/")
    wait_until_ready(page)
    page.evaluate("window.stillTheSamePage = true")
    page.get_by_role("button", name="Settings").click()
    panel = page.get_by_role("complementary", name="Conversation settings")

    # JSON mode on its own, without the word in the prompt: the app adds it.
    panel.get_by_label("Temperature").fill("0.2")
    panel.get_by_label("JSON mode").check()
    panel.get_by_role("button", name="Save settings").click()
    saved = panel.locator(".settings-saved")
    expect(saved).to_have_text("Settings saved. The next answer uses them.")
    conversation.refresh_from_db()
    assert conversation.temperature == 0.2
    assert conversation.response_format == ResponseFormat.JSON_OBJECT
    expect(panel).to_be_visible()
    assert page.evaluate("window.stillTheSamePage") is True
    assert urlsplit(page.url).path == f"/c/{conversation.pk}/"
    # The confirmation goes away by itself.
    expect(saved).to_have_text("", timeout=8_000)

    # A refused form: its error beside the field, the panel open, the page the same.
    panel.get_by_label("Alternatives per token").fill("3")
    panel.get_by_role("button", name="Save settings").click()
    error = panel.locator(".errorlist")
    expect(error).to_have_text("Turn on token confidence to show alternatives.")
    expect(panel.get_by_label("Alternatives per token")).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("window.stillTheSamePage") is True
    conversation.refresh_from_db()
    assert conversation.top_logprobs == 0

    panel.get_by_label("Token confidence").check()
    panel.get_by_role("button", name="Save settings").click()
    expect(saved).to_have_text("Settings saved. The next answer uses them.")
    expect(error).to_have_count(0)
    conversation.refresh_from_db()
    assert (conversation.logprobs, conversation.top_logprobs) == (True, 3)
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")


def test_a_message_bar_fades_on_its_own(login):
    page = login()
    conversation = titled(page.user, "Trip")
    page.goto(f"/c/{conversation.pk}/")
    wait_until_ready(page)
    nav = page.get_by_role("navigation", name="Conversations")
    nav.get_by_label("Options for Trip").click()
    nav.get_by_label("Title").fill("Holiday")
    nav.get_by_role("button", name="Rename").click()
    bar = page.locator(".flash")
    expect(bar).to_have_text("Conversation renamed.")
    expect(bar).to_have_count(0, timeout=15_000)


def test_a_long_paste_is_counted_not_cut(login):
    page = login()
    conversation = services.start_conversation(user=page.user)
    page.goto(f"/c/{conversation.pk}/")
    wait_until_ready(page)
    box = page.get_by_role("textbox", name="Message")
    count = page.locator("#message-count")
    send_button = page.get_by_role("button", name="Send")

    box.fill("a" * 100)
    expect(count).to_be_hidden()
    box.fill("a" * 19_950)
    expect(count).to_have_text("19,950 / 20,000")
    expect(send_button).to_be_enabled()

    box.fill("b" * 20_512)
    assert box.evaluate("el => el.value.length") == 20_512  # nothing cut
    expect(count).to_have_text("Too long: 20,512 / 20,000 characters. Shorten it to send it.")
    expect(send_button).to_be_disabled()
    expect(box).to_have_attribute("aria-invalid", "true")
    box.press("Enter")
    page.wait_for_timeout(300)
    expect(page.locator("#messages > .message")).to_have_count(0)
    assert box.evaluate("el => el.value.length") == 20_512

    box.press("End")
    box.evaluate(
        "el => { el.value = el.value.slice(0, 20000); el.dispatchEvent(new Event('input')); }"
    )
    expect(count).to_have_text("20,000 / 20,000")
    expect(send_button).to_be_enabled()
    box.press("Enter")
    wait_for_status(page, "complete")
    expect(page.locator('#messages > .message[data-role="user"]')).to_have_count(1)


# Pressing Enter scrolls to the bottom at once; the scroll event follows at the next frame. The
# sent message arriving in between (a fast server, a tall message on a narrow screen) made the
# content taller than "near the bottom" before that event, which took it for the reader
# scrolling away. Armed on the box, after the page's own handler: the same interleaving, every
# time.
GROW_BEFORE_THE_NEXT_FRAME = """box => box.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    const last = document.querySelector("#messages > .message:last-child .bubble");
    const filler = document.createElement("div");
    filler.style.height = "300px";
    last.append(filler);
}, { once: true })"""


def earlier_exchanges(user, words: str = ""):
    """A conversation of six questions and their answers, `words` in each."""
    conversation = services.start_conversation(user=user)
    bulk_append(
        Message(
            conversation=conversation,
            role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
            content=f"Earlier message {i}. {words}",
            status=Status.COMPLETE,
        )
        for i in range(12)
    )
    return conversation


def test_a_sent_message_is_always_followed_on_a_phone(login):
    page = login(viewport=PHONE)
    conversation = earlier_exchanges(page.user, "Some words to fill the line. " * 12)
    page.goto(f"/c/{conversation.pk}/")
    wait_until_ready(page)
    scroller = page.locator("#scroller")
    box = page.get_by_role("textbox", name="Message")
    jump = page.get_by_role("button", name="Jump to latest")
    for attempt in range(6):
        # A little above the bottom, still near enough to be following.
        scroller.evaluate(
            "el => new Promise((done) => { el.scrollTop -= 30;"
            " requestAnimationFrame(() => requestAnimationFrame(done)); })"
        )
        expect(jump).to_be_hidden()
        box.evaluate(GROW_BEFORE_THE_NEXT_FRAME)
        send(page, f"Question {attempt}: " + "tell me more about it " * 8)
        # The new reply, not the one before it, complete.
        expect(page.locator("#messages > .message")).to_have_count(14 + 2 * attempt)
        wait_for_status(page, "complete")
        expect(page.locator('#messages > .message[data-role="user"]').last).to_contain_text(
            f"Question {attempt}:"
        )
        page.wait_for_function(
            "() => { const s = document.getElementById('scroller');"
            " return s.scrollHeight - s.scrollTop - s.clientHeight < 5; }"
        )
        expect(jump).to_be_hidden()
        expect(last_reply(page)).to_be_in_viewport()


def test_the_conversation_keeps_its_height_while_a_reply_is_on_its_way_on_a_phone(login):
    # The Edit buttons are disabled while a reply streams. Had they gone away instead, each
    # answer's row of tools would lose a line on a phone, the conversation would shrink by
    # hundreds of pixels at once, and the view clamped by it read as the reader scrolling away.
    page = login(viewport=PHONE)
    conversation = earlier_exchanges(page.user)
    page.goto(f"/c/{conversation.pk}/")
    wait_until_ready(page)
    edits = page.locator(
        '#messages > .message:not([data-status="streaming"]) .tool[data-action="edit"]'
    )
    expect(edits.first).to_be_enabled()
    height = "() => [...document.querySelectorAll('#messages > .message')].slice(0, 12)" + (
        ".reduce((sum, item) => sum + item.offsetHeight, 0)"
    )
    idle = page.evaluate(height)

    send(page, "Tell me more [[sim:tps=5]]")
    wait_for_status(page, "streaming")
    assert edits.count() == 13  # the six questions, the six answers and the new question
    for i in range(edits.count()):
        expect(edits.nth(i)).to_be_visible()
        expect(edits.nth(i)).to_be_disabled()
    assert page.evaluate(height) == idle

    page.get_by_role("button", name="Stop").click()
    wait_for_status(page, "stopped")
    expect(edits.first).to_be_enabled()


def test_korean_header_and_a_two_character_emoji_stay_on_one_line_on_a_phone(login):
    page = login(language="ko", viewport=PHONE)
    persona = Persona.objects.create(name="Two", emoji="🇰🇷🎉", system_prompt="Be kind.")
    conversation = services.start_conversation(user=page.user, persona=persona)
    Message.objects.create(conversation=conversation, role=Role.USER, content="안녕하세요")
    Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, content="반가워요", status=Status.COMPLETE
    )
    page.goto(f"/c/{conversation.pk}/")
    wait_until_ready(page)
    expect(page.locator("#settings-toggle")).to_have_text("설정")
    assert lines_of(page, "#settings-toggle") == 1
    assert lines_of(page, ".message .avatar") == 1
    # The emoji fits inside its round (or, for two, pill-shaped) frame.
    assert page.locator(".message .avatar").first.evaluate(
        """el => {
            const range = document.createRange();
            range.selectNodeContents(el);
            const text = range.getBoundingClientRect();
            const box = el.getBoundingClientRect();
            return text.left >= box.left - 0.5 && text.right <= box.right + 0.5;
        }"""
    )
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_a_new_chats_sidebar_item_takes_its_title_in_its_menu_too(login):
    """The title comes after the first message; the item's menu, rename box and delete
    question take it as its text does."""
    page = login()
    page.goto("/c/new/")
    send(page, "Plan a weekend in Jeju")
    page.wait_for_url("**/c/*/")
    wait_for_status(page, "complete")
    title = "Plan a weekend in Jeju"
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    nav = page.get_by_role("navigation", name="Conversations")
    expect(nav.locator(".conversation-title")).to_have_text([title])
    nav.get_by_label(f"Options for {title}").click()
    expect(nav.get_by_label("Title")).to_have_value(title)
    expect(nav.locator("[data-delete-title]")).to_have_attribute("data-delete-title", title)
    nav.get_by_label("Title").fill("Jeju weekend")
    nav.get_by_role("button", name="Rename").click()
    page.wait_for_load_state()
    expect(page.get_by_role("heading", level=1)).to_have_text("Jeju weekend")


def test_times_written_by_the_server_are_in_the_browsers_time_zone(chat):
    page = chat(timezone_id="Asia/Seoul")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert cookies["tz"] == "Asia%2FSeoul"
    send(page, "What time is it?")
    wait_for_status(page, "complete")
    page.reload()
    answered = last_reply(page).locator(".parameters time")
    assert answered.get_attribute("datetime").endswith("+09:00")


def test_the_header_keeps_its_buttons_in_view_while_reconnecting_on_a_phone(login):
    page = login(viewport=PHONE)
    conversation = titled(page.user, "A title long enough to fill a phone's header by itself")
    page.route_web_socket("**/ws/**", lambda ws: ws.close(code=1006))  # the network is down
    page.goto(f"/c/{conversation.pk}/")
    status = page.locator("#connection-status")
    expect(status).to_contain_text("Reconnecting")
    settings = page.get_by_role("button", name="Settings")
    box = settings.bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"]
    header = page.locator(".chat-header").bounding_box()
    assert header["height"] < 64  # one line: the state is a bar below it
    line = status.bounding_box()
    assert line["y"] >= header["y"] + header["height"] - 1
    assert line["height"] < 32  # "Connection lost. Reconnecting in 2 s…" on one line


def test_a_long_title_gives_way_before_the_models_name(login):
    page = login(viewport={"width": 800, "height": 600})
    conversation = titled(page.user, "A title long enough to need every pixel of the header " * 2)
    page.goto(f"/c/{conversation.pk}/")
    picker = page.locator("#model-select")
    narrow = picker.bounding_box()["width"]
    page.set_viewport_size({"width": 1600, "height": 600})
    wide = picker.bounding_box()["width"]
    assert abs(narrow - wide) < 2  # the title was cut, not the model's name
    title = page.locator("#chat-title").evaluate("h => h.scrollWidth > h.clientWidth")
    assert title is True
