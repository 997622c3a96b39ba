"""No script from a reply ever runs; the keyboard works as people expect, IME included; the
Korean locale shows Korean."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations import services
from conversations.models import Message, Role, Status
from tests.browser.helpers import last_reply, send, wait_for_status, wait_until_ready

pytestmark = pytest.mark.browser

HOSTILE = (
    "Look: <img src=x onerror=alert(1)> and <script>alert(2)</script> "
    "[click me](javascript:alert(3)) [or me](JAVASCRIPT:alert(4)) "
    '<a href="javascript:alert(5)">raw</a> ![pic](javascript:alert(6))'
)

NO_SCRIPT_TRACES = """() => {
    const bad = [];
    for (const el of document.querySelectorAll("#messages *")) {
        for (const attr of el.attributes) {
            if (attr.name.startsWith("on")) bad.push(`${el.tagName} ${attr.name}`);
            if (/^\\s*javascript:/i.test(attr.value)) bad.push(`${el.tagName} ${attr.name}`);
        }
        const tag = el.tagName;
        if (["SCRIPT", "IMG", "IFRAME", "OBJECT", "EMBED"].includes(tag)) bad.push(tag);
    }
    return bad;
}"""


def open_conversation(login, **options):
    page = login(**options)
    conversation = services.start_conversation(user=page.user)
    page.conversation = conversation
    return page, conversation


def test_a_hostile_reply_runs_no_script_streamed_or_reloaded(login):
    page, conversation = open_conversation(login)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    # A reply stored with hostile markdown (as a model might write it), served by the page...
    Message.objects.create(conversation=conversation, role=Role.USER, content="Say something")
    Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, content=HOSTILE, status=Status.COMPLETE
    )
    page.goto(f"/c/{conversation.pk}/")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
    expect(last_reply(page)).to_contain_text("Look:")
    # ...and one streamed live: the simulator quotes the user's text in its markdown.
    send(page, HOSTILE)
    expect(page.locator("#messages > .message")).to_have_count(4)
    wait_for_status(page, "complete")
    expect(last_reply(page)).to_contain_text("<img src=x onerror=alert(1)>")
    page.wait_for_timeout(300)
    assert page.evaluate(NO_SCRIPT_TRACES) == []
    # The user's own message is shown as the text they typed.
    expect(page.locator('#messages > [data-role="user"] .content').last).to_have_text(HOSTILE)
    page.reload()
    expect(last_reply(page)).to_contain_text("<img src=x onerror=alert(1)>")
    assert page.evaluate(NO_SCRIPT_TRACES) == []
    links = last_reply(page).locator("a")
    for i in range(links.count()):
        assert links.nth(i).get_attribute("rel") == "noopener noreferrer"
    assert dialogs == []


def test_enter_that_ends_an_ime_composition_does_not_send(login):
    page, conversation = open_conversation(login)
    page.goto(f"/c/{conversation.pk}/")
    wait_until_ready(page)
    box = page.get_by_role("textbox", name="Message")
    box.focus()

    # A real IME composition through the DevTools protocol, committed with Enter.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.imeSetComposition", {"text": "안녕", "selectionStart": 2, "selectionEnd": 2})
    page.keyboard.press("Enter")
    # The events a Korean IME produces in Chrome, Safari and Firefox: Enter with
    # isComposing/keyCode 229 before compositionend, and (Chrome on macOS) a second Enter
    # right after it.
    page.evaluate(
        """() => {
            const box = document.getElementById("message-input");
            box.value = "안녕하세요";
            box.dispatchEvent(new CompositionEvent("compositionstart", {data: ""}));
            box.dispatchEvent(new KeyboardEvent("keydown",
                {key: "Enter", keyCode: 229, isComposing: true, bubbles: true, cancelable: true}));
            box.dispatchEvent(new CompositionEvent("compositionend", {data: "하세요"}));
            box.dispatchEvent(new KeyboardEvent("keydown",
                {key: "Enter", keyCode: 13, bubbles: true, cancelable: true}));
        }"""
    )
    page.wait_for_timeout(500)
    expect(page.locator("#messages > .message")).to_have_count(0)
    assert not Message.objects.filter(conversation=conversation).exists()
    expect(box).not_to_have_value("")

    # Shift+Enter breaks the line; a plain Enter afterwards sends.
    box.fill("첫 줄")
    box.press("Shift+Enter")
    box.type("둘째 줄")
    expect(box).to_have_value("첫 줄\n둘째 줄")
    box.press("Enter")
    expect(page.locator('#messages > [data-role="user"] .content')).to_have_text("첫 줄\n둘째 줄")
    expect(box).to_have_value("")
    wait_for_status(page, "complete")


def test_the_korean_locale_shows_korean(login, personas_in_db):
    page = login(language="ko")
    page.goto("/c/new/")
    expect(page.get_by_role("heading", level=1)).to_have_text("새 대화")
    expect(page.get_by_role("navigation", name="대화 목록")).to_be_visible()
    expect(page.get_by_role("combobox", name="페르소나")).to_be_visible()
    expect(page.locator(".persona-card").first).to_contain_text("도우미")
    expect(page.locator(".persona-card").first).to_contain_text("일상적인 질문을 돕는")
    wait_until_ready(page)
    box = page.get_by_role("textbox", name="메시지")
    box.fill("고양이 이름 추천해 줘")
    page.get_by_role("button", name="보내기").click()
    page.wait_for_url("**/c/*/")
    wait_for_status(page, "complete")
    expect(page.get_by_role("button", name="다시 생성")).to_be_visible()
    expect(page.get_by_role("button", name="새 대화")).to_be_visible()
    expect(page.get_by_role("button", name="설정")).to_be_visible()
    expect(page.locator(".group-label").first).to_have_text("오늘")
    expect(last_reply(page)).to_contain_text("질문하신 내용: «고양이 이름 추천해 줘»")


LINE_BREAKS = """(selector) => {
    // The characters after which a line ends, in the first element matching `selector`.
    const node = document.querySelector(selector).firstChild;
    const text = node.textContent;
    const top = (i) => {
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        return Math.round(range.getBoundingClientRect().top);
    };
    const ends = [];
    for (let i = 0; i + 1 < text.length; i++) {
        if (text[i + 1] !== " " && top(i + 1) > top(i)) ends.push([text[i], text[i + 1]]);
    }
    return ends;
}"""


def test_korean_lines_break_between_words_not_inside_them(chat):
    page = chat(language="ko", viewport={"width": 390, "height": 844})
    text = (
        "제주도 여행 계획을 세우고 있는데요, 사흘 동안 어디를 가면 좋을지 자세하게 "
        "알려주시면 정말 감사하겠습니다. 특히 한라산 등반과 해변 산책을 함께 하고 싶습니다."
    )
    box = page.get_by_role("textbox", name="메시지")
    box.fill(text)
    box.press("Enter")
    question = '#messages > [data-role="user"] .content'
    expect(page.locator(question)).to_have_text(text)
    ends = page.evaluate(LINE_BREAKS, question)
    assert ends, "the message fits one line: the test shows nothing"
    # Every line ends at a space (the next line starts after it), none between two syllables.
    assert all(before == " " for before, _after in ends), ends
    wait_for_status(page, "complete")
