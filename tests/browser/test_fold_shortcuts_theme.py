"""What a ChatGPT user expects of the page: a long message folded with Show more, the keyboard
shortcuts and their `?` dialog, and a light/dark choice that is remembered and never flashes."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from conversations import services
from conversations.models import Message, Role, Status
from tests.browser.helpers import last_reply, send, wait_for_status, wait_until_ready

pytestmark = pytest.mark.browser

LONG = "\n".join(f"line {n}" for n in range(1, 41))


def open_conversation(login, *, answer: str = "The answer.", **options):
    page = login(**options)
    conversation = services.start_conversation(user=page.user)
    Message.objects.create(conversation=conversation, role=Role.USER, content=LONG)
    Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, content=answer, status=Status.COMPLETE
    )
    page.goto(f"/c/{conversation.pk}/")
    wait_until_ready(page)
    page.conversation = conversation
    return page


def user_messages(page):
    return page.locator('#messages > .message[data-role="user"]')


def test_a_long_message_is_folded_with_show_more(login):
    page = open_conversation(login)
    long = user_messages(page).first
    content = long.locator(".content")
    expect(content).to_have_class(re.compile(r"\bfolded\b"))
    toggle = long.get_by_role("button", name="Show more")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    shown, whole = content.evaluate("el => [el.clientHeight, el.scrollHeight]")
    assert shown < whole / 1.5

    toggle.click()
    expect(content).not_to_have_class(re.compile(r"\bfolded\b"))
    expect(long.get_by_role("button", name="Show less")).to_have_attribute("aria-expanded", "true")
    shown, whole = content.evaluate("el => [el.clientHeight, el.scrollHeight]")
    assert shown == whole
    long.get_by_role("button", name="Show less").click()
    expect(content).to_have_class(re.compile(r"\bfolded\b"))

    # A short message has nothing to fold; a long one sent now is folded as it arrives.
    send(page, "A short one")
    wait_for_status(page, "complete")
    expect(user_messages(page).last.locator(".fold-toggle")).to_have_count(0)
    send(page, LONG.replace("line", "row"))
    wait_for_status(page, "complete")
    expect(user_messages(page).last.get_by_role("button", name="Show more")).to_be_visible()
    expect(user_messages(page)).to_have_count(3)
    expect(page.locator(".fold-toggle")).to_have_count(2)


def test_question_mark_and_its_button_open_the_shortcuts_dialog(login):
    page = open_conversation(login)
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    box = page.get_by_role("textbox", name="Message")
    # In the message box `?` is a character.
    box.press("?")
    expect(box).to_have_value("?")
    expect(dialog).to_be_hidden()

    box.fill("")
    box.evaluate("el => el.blur()")
    page.keyboard.press("?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("New chat")
    expect(dialog).to_contain_text("Copy the last answer")
    assert page.evaluate("document.getElementById('shortcuts-dialog').open")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.get_by_role("button", name="Keyboard shortcuts").click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()


def test_ctrl_k_and_slash_focus_the_search(login):
    page = open_conversation(login)
    search = page.get_by_role("searchbox", name="Search conversations")
    box = page.get_by_role("textbox", name="Message")
    box.focus()
    page.keyboard.press("Control+K")
    expect(search).to_be_focused()

    box.focus()
    page.keyboard.press("/")
    expect(box).to_have_value("/")
    expect(box).to_be_focused()
    box.fill("")
    box.evaluate("el => el.blur()")
    page.keyboard.press("/")
    expect(search).to_be_focused()
    expect(search).to_have_value("")


def test_ctrl_shift_c_copies_the_last_answer(login):
    page = open_conversation(
        login,
        answer="Last **answer**, as written.",
        permissions=["clipboard-read", "clipboard-write"],
    )
    page.evaluate("navigator.clipboard.writeText('')")
    page.keyboard.press("Control+Shift+C")
    expect(last_reply(page).get_by_role("button", name="Copy answer")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "Last **answer**, as written."


def test_ctrl_shift_o_starts_a_new_chat(login):
    page = open_conversation(login)
    page.keyboard.press("Control+Shift+O")
    expect(page).to_have_url(re.compile(r"/c/new/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("New chat")


# The theme at the moment the parser inserts <body>: before any module script has run, and
# before the first paint of the page's content.
RECORD_THEME_AT_BODY = """
new MutationObserver((records, observer) => {
    if (!document.body) return;
    observer.disconnect();
    const style = getComputedStyle(document.documentElement);
    window.themeAtBody = {
        bg: style.getPropertyValue("--bg").trim(),
        scheme: style.colorScheme,
    };
}).observe(document, { childList: true, subtree: true });
"""
LIGHT_BG = "#ffffff"


def theme_at_body(page) -> dict:
    return page.evaluate("window.themeAtBody")


def background(page) -> str:
    return page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--bg').trim()"
    )


def test_the_theme_follows_the_system_until_picked_and_is_remembered(login):
    page = login(color_scheme="light")
    page.context.add_init_script(RECORD_THEME_AT_BODY)
    page.goto("/c/new/")
    wait_until_ready(page)
    theme = page.get_by_role("combobox", name="Theme")
    expect(theme).to_have_value("system")
    assert background(page) == LIGHT_BG
    dark_bg = page.evaluate(
        """() => [...document.styleSheets].flatMap((sheet) => [...sheet.cssRules])
            .find((rule) => rule.media && rule.media.mediaText.includes("prefers-color-scheme"))
            .cssRules[0].style.getPropertyValue("--bg").trim()"""
    )
    assert dark_bg != LIGHT_BG

    theme.select_option("dark")
    assert background(page) == dark_bg
    assert page.evaluate("localStorage.getItem('theme')") == "dark"

    # Another page starts dark before its body exists: no flash of the system's light theme.
    page.goto("/compare/")
    expect(page.get_by_role("combobox", name="Theme")).to_have_value("dark")
    assert theme_at_body(page) == {"bg": dark_bg, "scheme": "dark"}

    # Light on a dark system, remembered too.
    page.emulate_media(color_scheme="dark")
    page.get_by_role("combobox", name="Theme").select_option("light")
    page.reload()
    assert theme_at_body(page) == {"bg": LIGHT_BG, "scheme": "light"}
    assert background(page) == LIGHT_BG

    # System again: the system's dark, and nothing kept.
    page.get_by_role("combobox", name="Theme").select_option("system")
    assert background(page) == dark_bg
    assert page.evaluate("localStorage.getItem('theme')") is None
    page.emulate_media(color_scheme="light")
    assert background(page) == LIGHT_BG


def test_the_login_page_offers_the_theme_too_in_korean(new_context):
    page = new_context("ko", color_scheme="dark").new_page()
    page.goto("/accounts/login/")
    theme = page.get_by_role("combobox", name="테마")
    expect(theme.locator("option")).to_have_text(["시스템 테마", "밝은 테마", "어두운 테마"])
    theme.select_option("light")
    assert background(page) == LIGHT_BG
