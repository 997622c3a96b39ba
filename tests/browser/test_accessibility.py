"""axe-core finds nothing on the pages a user sees: login, new chat, a chat with a code block,
its settings panel, compare, import, and the chat in Korean on a dark phone.

axe-core comes with the axe-playwright-python package (requirements-dev.txt); it is injected by
Playwright, never fetched from elsewhere, and the page's Content-Security-Policy stays as it is.
"""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from conversations import services
from conversations.models import Message, Role, Status
from tests.browser.helpers import wait_until_ready

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
REPLY_WITH_CODE = """Here is the loop:

```python
@cache
def count(name: str) -> None:
    # three lines
    for i in range(3):
        print(f"{name} {i}", True)
```

It prints three lines."""

axe = Axe()


def violations(page) -> list[str]:
    """Each violation as a line that says what, how bad and where."""
    found = axe.run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"])
        for v in found
    ]


def chat_with_code(page):
    conversation = services.start_conversation(user=page.user)
    Message.objects.create(conversation=conversation, role=Role.USER, content="A loop, please.")
    Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content=REPLY_WITH_CODE,
        status=Status.COMPLETE,
        prompt_tokens=12,
        completion_tokens=30,
    )
    page.goto(f"/c/{conversation.pk}/")
    wait_until_ready(page)
    expect(page.locator(".code-header").first).to_be_visible()
    return conversation


def test_the_login_page_has_no_violation(new_context):
    page = new_context().new_page()
    page.goto("/accounts/login/")
    assert violations(page) == []


def test_the_new_chat_page_has_no_violation(login):
    page = login()
    page.goto("/c/new/")
    wait_until_ready(page)
    assert violations(page) == []


def test_a_chat_with_a_code_block_and_its_settings_have_no_violation(login):
    page = login()
    chat_with_code(page)
    assert violations(page) == []
    page.get_by_role("button", name="Settings").click()
    expect(page.get_by_role("complementary", name="Conversation settings")).to_be_visible()
    assert violations(page) == []


@pytest.mark.parametrize("path", ["/compare/", "/c/import/", "/instructions/", "/archived/"])
def test_the_side_pages_have_no_violation(login, path):
    page = login()
    services.start_conversation(user=page.user)
    page.goto(path)
    wait_until_ready(page)
    assert violations(page) == []


def test_the_chat_in_korean_on_a_dark_phone_has_no_violation(login):
    page = login(language="ko", viewport=PHONE, color_scheme="dark")
    chat_with_code(page)
    assert violations(page) == []
