"""Read aloud: an answer spoken by the browser's own voices, in a Korean voice when it is written
in Korean, its code blocks named rather than read; pressed again, it stops. What the page asks
the browser to say is recorded (a headless browser has no sound to listen to)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import last_reply, send, wait_for_status, wait_until_ready

pytestmark = pytest.mark.browser

# speechSynthesis as the page sees it, with what it is asked to say kept for the test.
RECORD = """
window.spoken = [];
window.cancels = 0;
speechSynthesis.speak = (said) => window.spoken.push({ text: said.text, lang: said.lang });
speechSynthesis.cancel = () => { window.cancels += 1; };
"""


def test_an_answer_is_read_aloud_without_its_code(chat):
    page = chat(language="ko")
    page.context.add_init_script(RECORD)
    page.reload()
    wait_until_ready(page)
    box = page.get_by_role("textbox", name="메시지")
    box.fill("파이썬 예제를 보여 주세요")
    box.press("Enter")
    wait_for_status(page, "complete")
    button = last_reply(page).get_by_role("button", name="소리 내어 읽기")
    expect(button).to_have_attribute("aria-pressed", "false")

    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    spoken = page.evaluate("window.spoken")
    text = " ".join(part["text"] for part in spoken)
    assert {part["lang"] for part in spoken} == {"ko-KR"}
    assert "코드 블록." in text  # the simulator's answer has a code block: named, not read
    assert "def answer" not in text and "복사" not in text
    assert "파이썬 예제를 보여 주세요" in text  # the answer quotes the question
    assert all(len(part["text"]) <= 220 for part in spoken)

    # Pressed again: it stops.
    button.click()
    expect(button).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("window.cancels") >= 2
    assert len(page.evaluate("window.spoken")) == len(spoken)


def test_an_english_answer_gets_an_english_voice_and_waits_to_be_written(chat):
    page = chat()
    page.context.add_init_script(RECORD)
    page.reload()
    send(page, "Tell me more [[sim:tps=20]]")
    wait_for_status(page, "streaming")
    expect(last_reply(page).get_by_role("button", name="Read aloud")).to_be_hidden()
    wait_for_status(page, "complete", timeout=30_000)
    last_reply(page).get_by_role("button", name="Read aloud").click()
    assert {part["lang"] for part in page.evaluate("window.spoken")} == {"en-US"}
