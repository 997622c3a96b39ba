"""Pick a model in the chat header, send a message, and the answer's Parameters name it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from conversations import services
from conversations.models import ChatModel, Conversation
from tests.browser.helpers import last_reply, send, wait_for_status, wait_until_ready

pytestmark = pytest.mark.browser


@pytest.fixture
def model_list(transactional_db):
    ChatModel.objects.create(name="gpt-4o-mini", label="GPT-4o mini", position=1)
    ChatModel.objects.create(name="sim-vision", label="Simulator vision", accepts_images=True)


def test_the_picked_model_writes_the_next_answer_and_its_parameters_say_so(login, model_list):
    page = login()
    conversation = services.start_conversation(user=page.user)
    page.goto(f"/c/{conversation.pk}/")
    picker = page.get_by_role("combobox", name="Model")
    composer = page.locator("#composer")
    expect(picker).to_have_value("gpt-4o-mini")
    expect(composer).to_have_attribute("data-accepts-images", "false")

    picker.select_option(label="Simulator vision")

    expect(composer).to_have_attribute("data-accepts-images", "true")
    expect(page.locator("#model-status")).to_have_text(
        "The next answer is written by Simulator vision."
    )
    assert Conversation.objects.get(pk=conversation.pk).model == "sim-vision"
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
    send(page, "Which model are you?")
    wait_for_status(page, "complete")
    last_reply(page).get_by_text("Parameters").click()
    expect(last_reply(page).locator("details.parameters")).to_contain_text("Modelsim-vision")

    page.reload()
    expect(page.get_by_role("combobox", name="Model")).to_have_value("sim-vision")


def test_a_model_switched_off_meanwhile_is_refused_and_the_picker_goes_back(login, model_list):
    page = login()
    conversation = services.start_conversation(user=page.user)
    page.goto(f"/c/{conversation.pk}/")
    ChatModel.objects.filter(name="sim-vision").update(is_enabled=False)

    page.get_by_role("combobox", name="Model").select_option("sim-vision")

    expect(page.get_by_role("alert")).to_contain_text("switched off")
    expect(page.get_by_role("combobox", name="Model")).to_have_value("gpt-4o-mini")
    expect(page.locator("#composer")).to_have_attribute("data-accepts-images", "false")
    assert Conversation.objects.get(pk=conversation.pk).model == ""


def test_the_picker_speaks_korean(login, model_list):
    page = login(language="ko")
    conversation = services.start_conversation(user=page.user)
    page.goto(f"/c/{conversation.pk}/")

    page.get_by_role("combobox", name="모델").select_option("sim-vision")

    expect(page.locator("#model-status")).to_contain_text("Simulator vision")
    expect(page.locator("#model-status")).not_to_contain_text("The next answer")


def test_compare_puts_two_models_side_by_side(login, model_list):
    page = login()
    page.goto("/compare/")
    wait_until_ready(page)

    page.get_by_label("One persona with several models").check()
    expect(page.locator(".compare-personas")).to_be_hidden()
    expect(page.get_by_role("textbox", name="Temperatures")).to_be_hidden()
    page.get_by_role("checkbox", name="GPT-4o mini").check()
    page.get_by_role("checkbox", name="Simulator vision").check()
    # Paced, as the other compare journeys: the answers are still being written when the
    # columns' sockets connect.
    page.get_by_role("textbox", name="Message").fill("Hello, both. [[sim:tps=20,tokens=40]]")
    page.get_by_role("button", name="Compare answers").click()

    page.wait_for_url(re.compile(r"/compare/view/"))
    columns = page.locator(".compare-column")
    expect(columns).to_have_count(2)
    expect(columns.locator(".column-model")).to_have_text(
        ["sim-vision", "gpt-4o-mini"]
    )  # the list's order
    for index in range(2):
        reply = columns.nth(index).locator('.message[data-role="assistant"]')
        expect(reply).to_have_attribute("data-status", "complete", timeout=20_000)


# Every element of the chat header, with the model's select itself (it can outgrow its form).
HEADER_PARTS = (
    ".menu-toggle, #chat-title, .persona-badge, #model-select, .chat-header .conversation-usage, "
    "#settings-toggle"
)


def header_overlaps(page) -> list[str]:
    """The header's parts that are drawn over each other or past the header's edge."""
    return page.evaluate(
        """(selector) => {
            const header = document.querySelector(".chat-header").getBoundingClientRect();
            const parts = [...document.querySelectorAll(selector)]
                .filter((el) => el.getClientRects().length > 0)
                .map((el) => [el.id || el.className, el.getBoundingClientRect()]);
            const found = [];
            for (const [name, box] of parts) {
                if (box.left < header.left - 0.5 || box.right > header.right + 0.5) {
                    found.push(`${name} past the header's edge`);
                }
            }
            for (let i = 0; i < parts.length; i++) {
                for (let j = i + 1; j < parts.length; j++) {
                    const [a, boxA] = parts[i], [b, boxB] = parts[j];
                    const apart = boxA.right <= boxB.left + 0.5 || boxB.right <= boxA.left + 0.5
                        || boxA.bottom <= boxB.top + 0.5 || boxB.bottom <= boxA.top + 0.5;
                    if (!apart) found.push(`${a} over ${b}`);
                }
            }
            return found;
        }""",
        HEADER_PARTS,
    )


@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_chat_header_never_draws_the_model_over_its_neighbours(login, model_list, language):
    """At a phone's width the model's select was drawn over Settings, and beside the sidebar
    the usage was drawn over the select, with Settings cut off at the window's edge."""
    ChatModel.objects.filter(name="gpt-4o-mini").update(label="GPT-4o mini, the quick one")
    page = login(language=language)
    conversation = services.start_conversation(user=page.user)
    page.goto(f"/c/{conversation.pk}/")
    wait_until_ready(page)
    page.locator("#message-input").fill("A question long enough to make the title long")
    page.locator("#message-input").press("Enter")
    wait_for_status(page, "complete")
    page.reload()
    expect(page.locator(".chat-header .conversation-usage")).to_be_visible()
    for width in (360, 390, 600, 768, 1024, 1280):
        page.set_viewport_size({"width": width, "height": 800})
        expect(page.locator("#model-select")).to_be_visible()
        assert header_overlaps(page) == [], f"at {width} px"
