"""The first minute of a new user: the login and sign-up pages say what the app is, in its own
look; the new-chat page shows the personas once, as cards chosen from the keyboard that follow
the select scripts drive (and the other way), each with example prompts that start the chat."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations import services
from conversations.models import Conversation, Persona
from tests.browser.helpers import wait_for_status, wait_until_ready

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def test_the_login_and_sign_up_pages_say_what_the_app_is_in_its_own_look(new_context):
    page = new_context().new_page()
    page.goto("/accounts/login/")
    expect(page.locator(".product")).to_contain_text("chatsite")
    expect(page.locator(".product")).to_contain_text("ChatGPT-style chat")
    page.get_by_role("link", name="Sign up").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign up")
    expect(page.locator(".product")).to_contain_text("chatsite")
    body = page.locator("main").inner_text()
    assert "150 characters or fewer" not in body and "@/./+/-/_" not in body
    # Django's long list of password rules is one short hint, tied to its field.
    expect(page.get_by_label("Password", exact=True)).to_have_accessible_description(
        "At least 8 characters, not a common password."
    )
    # The fields are the app's, with its own font and border, one under the other.
    username, password = page.get_by_label("Username"), page.get_by_label("Password", exact=True)
    assert username.bounding_box()["y"] < password.bounding_box()["y"]
    assert username.evaluate("el => getComputedStyle(el).borderRadius") != "0px"


def test_the_persona_cards_are_chosen_from_the_keyboard_and_follow_the_select(login):
    page = login()
    page.goto("/c/new/")
    wait_until_ready(page)
    personas = {p.name_en: p for p in Persona.objects.all()}
    cards = page.get_by_role("radiogroup", name="Who do you want to talk to?")
    radios = cards.get_by_role("radio")
    expect(radios).to_have_count(4)
    assistant = cards.get_by_role("radio", name="Assistant", exact=True)
    counselor = cards.get_by_role("radio", name="Counselor")
    select = page.get_by_role("combobox", name="Persona")
    expect(assistant).to_be_checked()

    # Shown once: the select is kept for scripts but is not on screen.
    box = select.bounding_box()
    assert box["x"] + box["width"] <= 0, box

    # Back from the message box, past the attach button and the three examples, Tab lands on
    # the chosen card (one stop for the group); the arrows choose another.
    page.get_by_role("textbox", name="Message").focus()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Attach files")).to_be_focused()
    for _ in range(4):
        page.keyboard.press("Shift+Tab")
    expect(assistant).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(counselor).to_be_checked()
    expect(counselor).to_be_focused()
    expect(select).to_have_value(str(personas["Counselor"].pk))

    # The select, driven by a script, moves the cards.
    select.select_option(str(personas["Chef"].pk))
    expect(cards.get_by_role("radio", name="Chef")).to_be_checked()
    expect(counselor).not_to_be_checked()
    expect(
        page.get_by_role("button", name="Give me a simple recipe for kimchi fried rice")
    ).to_be_visible()
    expect(page.get_by_role("button", name="How can I stop overthinking at night?")).to_be_hidden()

    # Space on a card chooses it too, and the chat starts with that persona.
    cards.get_by_role("radio", name="Fitness trainer").focus()
    page.keyboard.press("Space")
    expect(select).to_have_value(str(personas["Fitness trainer"].pk))
    page.get_by_role("textbox", name="Message").fill("Legs today?")
    page.keyboard.press("Enter")
    page.wait_for_url("**/c/*/")
    expect(page.locator(".persona-badge")).to_contain_text("Fitness trainer")


def test_an_example_prompt_starts_the_chat_with_it(login):
    page = login()
    page.goto("/c/new/")
    wait_until_ready(page)
    page.get_by_role("radio", name="Chef").check()
    example = page.get_by_role("button", name="Give me a simple recipe for kimchi fried rice")
    expect(example).to_be_visible()
    example.click()
    page.wait_for_url("**/c/*/")
    user_message = page.locator('#messages > .message[data-role="user"] .content')
    expect(user_message).to_have_text("Give me a simple recipe for kimchi fried rice")
    wait_for_status(page, "complete")
    conversation = Conversation.objects.get(user=page.user)
    assert conversation.persona.name_en == "Chef"


def test_the_korean_new_chat_page_on_a_phone_offers_korean_examples(login):
    page = login(language="ko", viewport=PHONE)
    page.goto("/c/new/")
    wait_until_ready(page)
    expect(page.get_by_role("radio", name="도우미")).to_be_checked()
    example = page.get_by_role("button", name="복리가 어떻게 작동하는지 간단한 예와 함께 설명해 줘")
    expect(example).to_be_visible()
    expect(page.get_by_role("heading", name="도우미에게 물어보기")).to_be_visible()
    # Nothing sticks out sideways at phone width.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.parametrize("page_of", ["new chat", "conversation"])
def test_enter_pressed_before_the_page_is_ready_sends_once_it_is(login, page_of):
    """On a slow network the message box shows seconds before the page's script has loaded:
    an Enter then only broke the line and nothing was sent, and an Enter before the socket's
    first connection said "You are offline"."""
    page = login()
    path = "/c/new/"
    if page_of == "conversation":
        path = f"/c/{services.start_conversation(user=page.user).pk}/"
    held = []
    page.route(
        "**/js/chat.js", lambda route: held.append(route)
    )  # the page's script waits, as on a slow network
    page.goto(path, wait_until="commit")
    page.wait_for_selector("html[data-early-enter]", state="attached")
    box = page.locator("#message-input")
    box.fill("Typed before the page was ready")
    box.press("Enter")
    assert box.input_value() == "Typed before the page was ready"  # no line broken
    assert held, "the page's script was not held back"
    held[0].continue_()
    page.unroute("**/js/chat.js")
    user_message = page.locator('#messages > .message[data-role="user"] .content')
    expect(user_message).to_have_text("Typed before the page was ready")
    wait_for_status(page, "complete")
    expect(page.locator("#chat-error")).to_be_hidden()
    expect(page.locator("#message-input")).to_have_value("")
