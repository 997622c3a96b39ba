"""JSON mode: a reply is shown formatted, checked when it ends, and marked when it does not
parse; the settings say the app makes sure the word JSON reaches the model."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from conversations import services
from conversations.models import Message, Role, Status
from conversations.rendering import json_check, render_reply
from tests.conversations.chat_client import ChatSocket

pytestmark = pytest.mark.django_db

JSON_PARAMETERS = {"model": "m", "temperature": 1.0, "response_format": "json_object"}


def test_a_valid_json_reply_is_pretty_printed():
    html = render_reply('{"colours": ["red", "blue"]}', JSON_PARAMETERS)
    assert '<code class="language-json">' in html
    assert "\n  " in html  # indented


def test_a_json_reply_that_does_not_parse_is_shown_exactly_as_written():
    html = render_reply('{"colours": ["red", "<b>bl', JSON_PARAMETERS)
    assert html == '<pre><code class="json-raw">{"colours": ["red", "&lt;b&gt;bl</code></pre>'


def test_json_is_checked_only_once_the_reply_has_ended():
    assert json_check('{"a": 1', JSON_PARAMETERS, Status.STREAMING) == ""
    assert json_check('{"a": 1', JSON_PARAMETERS, Status.STOPPED) == "invalid"
    assert json_check('{"a": 1}', JSON_PARAMETERS, Status.COMPLETE) == "valid"
    assert json_check('{"a": 1', {"response_format": "text"}, Status.COMPLETE) == ""
    assert json_check("", JSON_PARAMETERS, Status.ERROR) == ""


def page(client, owner, conversation) -> str:
    client.force_login(owner)
    return client.get(reverse("conversation", args=[conversation.pk])).content.decode()


def test_a_json_reply_that_does_not_parse_is_marked_on_the_page(client, owner, conversation):
    Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content='{"answer": "cut o',
        status=Status.TRUNCATED,
        parameters=JSON_PARAMETERS,
    )
    html = page(client, owner, conversation)
    assert 'data-format="json_object" data-json="invalid"' in html
    assert '<p class="json-note">Not valid JSON: shown as the model wrote it.</p>' in html


def test_a_valid_json_reply_is_not_marked(client, owner, conversation):
    Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content='{"answer": "fine"}',
        status=Status.COMPLETE,
        parameters=JSON_PARAMETERS,
    )
    html = page(client, owner, conversation)
    assert 'data-json="valid"' in html
    assert '<p class="json-note"></p>' in html


def test_the_settings_say_the_app_makes_sure_the_word_json_reaches_the_model(
    client, owner, conversation
):
    html = page(client, owner, conversation)
    assert "The app makes sure the word reaches the model with every request" in html


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("isolated_channel_layer")
async def test_a_json_reply_cut_by_the_token_limit_ends_invalid_and_stays_as_written(
    owner, conversation, model_server
):
    await database_sync_to_async(services.update_conversation_settings)(
        user=owner,
        conversation_id=conversation.pk,
        values={
            "response_format": "json_object",
            "system_prompt": "Answer in JSON.",
            "max_completion_tokens": 6,
        },
    )
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Three colours")
        ended = (await socket.until("reply.ended"))["message"]
    assert ended["status"] == Status.TRUNCATED
    with pytest.raises(json.JSONDecodeError):
        json.loads(ended["content"])
    assert json_check(ended["content"], ended["parameters"], ended["status"]) == "invalid"
    assert "json" in model_server.config.requests[-1]["messages"][0]["content"].lower()
