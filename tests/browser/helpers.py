"""Small helpers the browser journeys share."""

from __future__ import annotations

import re

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect


def wait_for_status(page, status: str, *, role: str = "assistant", timeout: float = 15_000):
    """The last message of `role` has `status`; if it never does, the failure says what it has."""
    try:
        page.wait_for_function(
            """([role, status]) => {
                const items = document.querySelectorAll(
                    `#messages > .message[data-role="${role}"]`
                );
                return items.length && items[items.length - 1].dataset.status === status;
            }""",
            arg=[role, status],
            timeout=timeout,
        )
    except PlaywrightTimeoutError:
        last = page.evaluate(
            """(role) => {
                const items = document.querySelectorAll(
                    `#messages > .message[data-role="${role}"]`
                );
                const item = items[items.length - 1];
                return item ? `${item.dataset.status}: ${item.innerText.slice(0, 300)}` : "none";
            }""",
            role,
        )
        raise AssertionError(f"the last {role} message is not {status!r} but {last}") from None


def last_reply(page):
    return page.locator('#messages > .message[data-role="assistant"]').last


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def reply_text(page) -> str:
    return normalized(last_reply(page).locator(".content").inner_text())


def wait_until_ready(page) -> None:
    """The page's script has run and, on a conversation, its socket is open."""
    page.wait_for_selector("html[data-ready]", state="attached")
    if page.locator("#connection-status").count():
        page.wait_for_selector('#connection-status[data-state="open"]', state="attached")


def send(page, text: str) -> None:
    wait_until_ready(page)
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def another_window(page):
    """The page's conversation in a second window with the same login, its socket open. (A
    background tab of one window gets no animation frames, and the page renders on them.)"""
    other = page.context.browser.new_context(storage_state=page.context.storage_state()).new_page()
    other.goto(page.url)
    expect(other.locator("#connection-status")).to_have_attribute("data-state", "open")
    return other
