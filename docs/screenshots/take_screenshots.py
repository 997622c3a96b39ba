"""Take the README's screenshots: the chat in light and dark, English and Korean; with `fork`
after the password, only the fork (fork-en-light.png): an edited question and a regenerated
answer, each at ‹ 2 / 2 ›; with `models`, only the model picker (models-en-light.png): a
model chosen in the header, and the answer's Parameters naming it (the model list filled by
`manage.py bootstrap` or `sync_models` first); with `attachments`, only an image and a text
file attached to a message and the answer describing them (attachments-en-light.png).

Run the app in demo mode on a fresh database (no OPENAI_API_KEY: the built-in simulator
answers) with CHAT_MODEL_TITLES=0 (the sidebar is found by the first messages' titles), then:

    .venv/bin/python docs/screenshots/take_screenshots.py http://127.0.0.1:8011 admin PASSWORD

Needs Debian's chromium (and fonts-noto-cjk, fonts-noto-color-emoji for the Korean and emoji
glyphs). Writes chat-<lang>-<scheme>.png beside this file.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]
CHATS = {
    "en": ("Chef", "How do I make a quick tomato pasta? Show me the timer code too."),
    "ko": ("Fitness trainer", "초보자를 위한 주 3회 운동 계획을 코드로 정리해 줘."),
}
OTHERS = ["Plan a weekend trip to Busan", "고양이 이름 추천해 줘", "Explain JSON mode"]


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def start_chat(page, base: str, persona: str | None, text: str) -> str:
    page.goto(f"{base}/c/new/")
    page.wait_for_selector("html[data-ready]", state="attached")
    if persona:
        page.locator(".persona-card", has_text=persona).click()
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")
    page.wait_for_url("**/c/*/")
    page.wait_for_selector('#messages > [data-role="assistant"][data-status="complete"]')
    return page.url


def logged_in(playwright, base: str, username: str, password: str, *, height: int):
    """Chromium, and a page of it in English at 1280 × `height`, logged in."""
    browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
    context = browser.new_context(
        viewport={"width": 1280, "height": height},
        locale="en",
        extra_http_headers={"Accept-Language": "en"},
    )
    page = context.new_page()
    log_in(page, base, username, password)
    return browser, page


def main(base: str, username: str, password: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        context = browser.new_context(locale="en", extra_http_headers={"Accept-Language": "en"})
        page = context.new_page()
        log_in(page, base, username, password)
        for text in OTHERS:
            start_chat(page, base, None, text)
        page.get_by_label(f"Options for {OTHERS[0]}").click()
        page.get_by_role("button", name="Pin", exact=True).click()
        urls = {
            lang: start_chat(page, base, persona, text) for lang, (persona, text) in CHATS.items()
        }
        context.close()
        for lang, url in urls.items():
            for scheme in ("light", "dark"):
                context = browser.new_context(
                    viewport={"width": 1280, "height": 940},
                    color_scheme=scheme,
                    locale=lang,
                    extra_http_headers={"Accept-Language": lang},
                )
                page = context.new_page()
                log_in(page, base, username, password)
                page.goto(url)
                page.wait_for_selector('#connection-status[data-state="open"]', state="attached")
                page.locator("details.parameters").last.evaluate("el => el.open = true")
                page.locator("#scroller").evaluate("el => el.scrollTo(0, el.scrollHeight)")
                page.wait_for_timeout(300)
                page.screenshot(path=str(HERE / f"chat-{lang}-{scheme}.png"))
                context.close()
        browser.close()


def fork(base: str, username: str, password: str) -> None:
    with sync_playwright() as playwright:
        browser, page = logged_in(playwright, base, username, password, height=900)
        start_chat(page, base, None, "Suggest a name for a bakery.")
        question = page.locator('#messages > [data-role="user"]').first
        question.get_by_role("button", name="Edit").click()
        page.get_by_role("textbox", name="Edit message").fill(
            "Suggest a name for a bakery in Seoul."
        )
        page.get_by_role("button", name="Save and send").click()
        page.wait_for_selector('#messages > [data-role="user"][data-version="2/2"]')
        page.wait_for_selector('#messages > [data-role="assistant"][data-status="complete"]')
        page.get_by_role("button", name="Regenerate").click()
        page.wait_for_selector('#messages > [data-role="assistant"][data-version="2/2"]')
        page.wait_for_selector('#messages > [data-role="assistant"][data-status="complete"]')
        page.locator("#scroller").evaluate("el => el.scrollTo(0, 0)")
        page.wait_for_timeout(300)
        page.screenshot(path=str(HERE / "fork-en-light.png"))
        browser.close()


def models(base: str, username: str, password: str) -> None:
    with sync_playwright() as playwright:
        browser, page = logged_in(playwright, base, username, password, height=940)
        start_chat(page, base, None, "Which model are you?")
        page.get_by_role("combobox", name="Model").select_option("sim-vision")
        page.wait_for_selector("#composer[data-accepts-images=true]", state="attached")
        page.fill("#message-input", "And now, which model?")
        page.press("#message-input", "Enter")
        page.wait_for_function(
            """() => document.querySelectorAll(
                '#messages > [data-role="assistant"][data-status="complete"]').length === 2"""
        )
        for details in page.locator("details.parameters").all():
            details.evaluate("el => el.open = true")
        page.locator("#scroller").evaluate("el => el.scrollTo(0, el.scrollHeight)")
        page.wait_for_timeout(300)
        page.screenshot(path=str(HERE / "models-en-light.png"))
        browser.close()


def picture(path: Path) -> None:
    """A small landscape to attach: a sky, a sun and hills."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (960, 640), (135, 190, 235))
    draw = ImageDraw.Draw(image)
    draw.ellipse((700, 80, 840, 220), fill=(255, 205, 60))
    draw.polygon(
        [(0, 640), (0, 420), (300, 300), (620, 440), (960, 360), (960, 640)], fill=(70, 150, 90)
    )
    image.save(path)


def attachments(base: str, username: str, password: str) -> None:
    """attachments-en-light.png: an image and a text file attached to one message, and the
    simulator's answer saying what reached it."""
    folder = Path(tempfile.mkdtemp())
    picture(folder / "hills.png")
    (folder / "notes.md").write_text("# Trip notes\nLeave at 7, picnic on the hill at noon.\n")
    with sync_playwright() as playwright:
        browser, page = logged_in(playwright, base, username, password, height=900)
        start_chat(page, base, None, "Hello!")
        page.get_by_role("combobox", name="Model").select_option("sim-vision")
        page.wait_for_selector("#composer[data-accepts-images=true]", state="attached")
        page.locator("#composer input[type=file]").set_input_files(
            [str(folder / "hills.png"), str(folder / "notes.md")]
        )
        page.wait_for_timeout(800)
        page.fill("#message-input", "What do you see, and what do my notes say?")
        page.press("#message-input", "Enter")
        page.wait_for_function(
            """() => document.querySelectorAll(
                '#messages > [data-role="assistant"][data-status="complete"]').length === 2"""
        )
        page.locator("#scroller").evaluate("el => el.scrollTo(0, el.scrollHeight)")
        page.wait_for_timeout(300)
        page.screenshot(path=str(HERE / "attachments-en-light.png"))
        browser.close()
    shutil.rmtree(folder)


if __name__ == "__main__":
    takes = {"fork": fork, "models": models, "attachments": attachments}
    takes.get(sys.argv[4] if len(sys.argv) > 4 else "", main)(*sys.argv[1:4])
