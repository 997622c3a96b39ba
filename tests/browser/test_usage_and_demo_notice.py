"""The usage line when the model's server reports none (counted by the app, shown with ≈, live),
and the demo mode notice: one line on a phone, dismissed for good with its ✕."""

from __future__ import annotations

import os
import subprocess

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import expect

from conversations import services
from conversations.models import Message, Role
from tests.browser.conftest import ROOT, _database_url, _free_port, _wait_for_port
from tests.browser.helpers import last_reply, send, wait_for_status, wait_until_ready
from tests.servers import serve_command

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}


def test_a_server_that_reports_no_usage_gets_an_estimated_figure_live(login):
    page = login()
    conversation = services.start_conversation(user=page.user)
    page.goto(f"/c/{conversation.pk}/")
    send(page, "Count my tokens [[sim:usage=none]]")
    wait_for_status(page, "complete")

    reply = Message.objects.get(conversation=conversation, role=Role.ASSISTANT)
    assert reply.usage_estimated
    prompt, completion = reply.prompt_tokens, reply.completion_tokens
    line = f"≈ {prompt + completion} tokens ({prompt} in · {completion} out)"
    expect(last_reply(page).locator(".usage")).to_have_text(line)
    expect(page.locator(".chat-header .conversation-usage")).to_have_text(line)
    last_reply(page).locator("details.parameters summary").click()
    expect(last_reply(page).locator("details.parameters")).to_contain_text(
        f"≈ {prompt} in · {completion} out (estimated)"
    )
    # The next answer's server reports its usage: the total holds an estimate all the same.
    send(page, "And now counted")
    page.wait_for_function(
        "() => document.querySelectorAll('#messages > [data-role=assistant]').length === 2"
    )
    wait_for_status(page, "complete")
    expect(last_reply(page).locator(".usage")).not_to_contain_text("≈")
    expect(page.locator(".chat-header .conversation-usage")).to_contain_text("≈ ")


@pytest.fixture(scope="module")
def demo_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """daphne in demo mode (no key, no model address): the built-in model answers."""
    with django_db_blocker.unblock():
        database_url = _database_url()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SIMULATOR_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            "DJANGO_DEBUG": "1",
            "DJANGO_SECRET_KEY": django_settings.SECRET_KEY,
            "DATABASE_URL": database_url,
            "CHAT_MODEL_TITLES": "0",
        }
    )
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = tmp_path_factory.mktemp("demo") / "daphne.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            serve_command(port),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_demo_notice_takes_one_line_on_a_phone(login, demo_server, language):
    page = login(language=language, viewport=PHONE)
    page.goto(f"{demo_server}/")
    wait_until_ready(page)
    notice = page.get_by_role("note")
    expect(notice).to_be_visible()
    expect(notice.locator(".demo-long")).to_be_hidden()
    lines, cut = page.locator(".demo-text").evaluate(
        """(text) => {
            const style = getComputedStyle(text);
            const line = parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize);
            const lines = text.getBoundingClientRect().height / line;
            return [lines, text.scrollWidth > text.clientWidth];
        }"""
    )
    assert lines < 1.5, f"{lines:.1f} lines"
    assert not cut, "the short sentence fits whole"


def test_the_demo_notice_dismissed_stays_dismissed(login, demo_server):
    page = login()
    page.goto(f"{demo_server}/")
    wait_until_ready(page)
    notice = page.get_by_role("note")
    expect(notice).to_contain_text("Demo mode: answers are simulated")
    page.get_by_role("button", name="Dismiss the demo mode notice").click()
    expect(notice).to_have_count(0)
    page.reload()
    wait_until_ready(page)
    expect(page.get_by_role("note")).to_have_count(0)
    assert "Dismiss" not in page.content(), "left out by the server, not hidden by a script"
