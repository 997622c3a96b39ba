"""Custom instructions: what a user tells the assistant once about themselves and how they like
answers reaches the model with every message, in every conversation of theirs and no one
else's, after the conversation's own system prompt."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conversations import services
from conversations.models import Message, Preferences
from tests.conversations.chat_client import ChatSocket

pytestmark = [pytest.mark.django_db(transaction=True)]

INSTRUCTIONS = "I am a backend developer in Seoul.\nAnswer briefly, with code in Python."


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def system_message(model_server) -> str:
    first = model_server.config.requests[-1]["messages"][0]
    assert first["role"] == "system"
    return first["content"]


async def answer(user, conversation) -> str:
    async with ChatSocket(user, conversation.pk) as socket:
        await socket.send({"type": "message.send", "client_id": "m1", "content": "Hello"})
        return (await socket.until("reply.ended"))["message"]["status"]


def test_the_page_saves_them_as_typed_and_says_when_they_apply(owner):
    browser = logged_in(owner)
    page = browser.get(reverse("custom_instructions"))
    assert page.status_code == 200
    assert "What should the assistant know about you" in page.content.decode()

    saved = browser.post(
        reverse("custom_instructions"), {"instructions": INSTRUCTIONS.replace("\n", "\r\n") + " "}
    )
    assert saved.status_code == 302 and saved["Location"] == reverse("custom_instructions")
    assert Preferences.objects.get(user=owner).instructions == INSTRUCTIONS
    assert [str(m) for m in get_messages(saved.wsgi_request)] == [
        "Saved. Your next messages carry them, in every conversation."
    ]
    assert INSTRUCTIONS in browser.get(reverse("custom_instructions")).content.decode()


def test_instructions_longer_than_a_system_prompt_may_be_are_refused(owner, settings):
    settings.CHAT_MAX_SYSTEM_PROMPT_CHARS = 100
    response = logged_in(owner).post(reverse("custom_instructions"), {"instructions": "x" * 101})
    assert response.status_code == 400
    assert "Your instructions can be at most 100 characters long; these have 101." in (
        response.content.decode()
    )
    assert not Preferences.objects.exists()


def test_the_page_needs_a_login(client):
    response = client.get(reverse("custom_instructions"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


async def test_every_message_carries_them_after_the_conversations_system_prompt(
    owner, outsider, conversation, model_server
):
    await database_sync_to_async(services.save_instructions)(user=owner, instructions=INSTRUCTIONS)
    assert await answer(owner, conversation) == "complete"
    assert system_message(model_server) == (
        f"{conversation.system_prompt}\n\n{services.INSTRUCTIONS_LEAD}\n{INSTRUCTIONS}"
    )

    # Someone else's conversation goes as it was.
    others = await database_sync_to_async(services.start_conversation)(user=outsider)
    assert await answer(outsider, others) == "complete"
    assert system_message(model_server) == others.system_prompt


async def test_turned_off_by_an_empty_box_nothing_is_added(owner, conversation, model_server):
    await database_sync_to_async(services.save_instructions)(user=owner, instructions="")
    assert await answer(owner, conversation) == "complete"
    assert system_message(model_server) == conversation.system_prompt


def test_a_post_reads_them_with_no_statement_of_their_own(owner, conversation):
    """They come with the user's row, which the post locks anyway."""
    services.save_instructions(user=owner, instructions=INSTRUCTIONS)

    def post(client_id: str):
        post = services.Post(
            user=owner, conversation_id=conversation.pk, content="Hi", client_id=client_id
        )
        return services.post_messages([post])[0]

    def answered(prepared) -> None:
        services.end_replies(Message.objects.filter(pk=prepared.reply.pk), status="complete")

    answered(post("warm"))  # the tables the process holds a while (`snapshots`) read once
    with CaptureQueriesContext(connection) as with_them:
        prepared = post("a")
    assert INSTRUCTIONS in prepared.request["messages"][0]["content"]
    answered(prepared)
    Preferences.objects.all().delete()
    with CaptureQueriesContext(connection) as without:
        post("b")
    assert len(with_them) == len(without)
    own_reads = [
        q
        for q in with_them.captured_queries + without.captured_queries
        if 'FROM "conversations_preferences"' in q["sql"]
    ]
    assert own_reads == []
