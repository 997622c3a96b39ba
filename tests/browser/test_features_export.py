"""Export a conversation from the page and import it back; a wrong file is refused."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from conversations import services
from conversations.models import Conversation, Message, Role, Status
from tests.browser.helpers import wait_until_ready

pytestmark = pytest.mark.browser


def test_a_conversation_downloaded_as_json_comes_back_through_import(login, tmp_path):
    page = login()
    conversation = services.start_conversation(user=page.user)
    services.rename_conversation(user=page.user, conversation_id=conversation.pk, title="Tea")
    Message.objects.create(conversation=conversation, role=Role.USER, content="Green or black?")
    Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="**Green**, in the morning.",
        status=Status.COMPLETE,
        prompt_tokens=12,
        completion_tokens=6,
    )
    page.goto(f"/c/{conversation.pk}/")
    wait_until_ready(page)
    page.get_by_role("button", name="Settings").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as JSON").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.startswith("tea-") and saved.suffix == ".json"

    page.get_by_role("link", name="Import").click()
    page.get_by_label("Export file (.json or .zip)").set_input_files(saved)
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(re.compile(r"/c/[0-9a-f-]+/$"))
    # The flash's status, not the connection's (also a status, shown while the socket connects).
    expect(page.get_by_role("status").filter(has_text="Imported")).to_contain_text(
        "Imported 1 conversation."
    )
    copy = Conversation.objects.filter(user=page.user).exclude(pk=conversation.pk).get()
    assert page.url.endswith(f"/c/{copy.pk}/")
    expect(page.locator('#messages > [data-role="user"] .content')).to_have_text("Green or black?")
    expect(page.locator('#messages > [data-role="assistant"] strong')).to_have_text("Green")
    # Tokens spent elsewhere (or never): no usage figure of this server counts them, and a
    # conversation with none counted shows none.
    expect(page.locator(".chat-header .conversation-usage")).to_have_text("")


def test_a_file_that_is_not_an_export_is_refused_with_a_clear_message(login, tmp_path):
    page = login()
    page.goto("/c/import/")
    wait_until_ready(page)
    wrong = tmp_path / "notes.json"
    wrong.write_text('{"notes": ["buy tea"]}')
    page.get_by_label("Export file (.json or .zip)").set_input_files(wrong)
    page.get_by_role("button", name="Import").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("This file cannot be imported: it is not a conversation export")
    expect(alert).to_contain_text("Nothing was imported.")
    assert not Conversation.objects.filter(user=page.user).exists()
