"""The model's API key never leaves the server: not in a page, a socket frame, a log line or
an error, whatever goes wrong. The key here is a canary that would be recognised anywhere."""

from __future__ import annotations

import json
import logging
import sys

import httpx2 as httpx
import openai
import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.views.debug import technical_500_response

from conversations import llm
from conversations.models import Persona

from .sockets import logged_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer"),
]

CANARY = "sk-canary-7f3a9c2e5b1d4f6a8c0e2b4d"
# A fragment as distinctive as the whole: a masked or cut key would still show it.
FRAGMENTS = [CANARY, "canary-7f3a", "5b1d4f6a8c0e"]


def assert_no_key(where: str, text: str) -> None:
    for fragment in FRAGMENTS:
        assert fragment not in text, f"the API key ({fragment}) is in {where}"


@pytest.fixture
def canary_key(settings, model_server, caplog):
    settings.OPENAI_API_KEY = CANARY
    caplog.set_level(logging.DEBUG)
    return model_server


def everything_logged(caplog) -> str:
    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        if record.exc_info:
            lines.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(lines)


async def test_a_refused_key_and_a_failing_server_leak_the_key_nowhere(
    owner, conversation, canary_key, caplog
):
    """The model server refuses the key (401), then fails (500): the replies end as
    `error` with a sentence for people. Without care the SDK's exception text, the server's
    error body or a debug log of the request could carry the key to the browser or the log."""
    canary_key.config.api_key = "sk-the-key-the-server-expects"
    async with await logged_in(owner, conversation.pk) as socket:
        await socket.say("Hello?")
        refused = await socket.until("reply.ended")
        canary_key.config.api_key = None
        await socket.say("Again [[sim:fault=http:500]]")
        failed = await socket.until("reply.ended")
        await socket.send({"type": "subscribe", "after_id": 0})
        await socket.until("sync")
    assert refused["message"]["status"] == failed["message"]["status"] == "error"
    assert "API key" in refused["message"]["error"]
    assert_no_key("a socket frame", json.dumps(socket.frames))
    assert_no_key("a log record", everything_logged(caplog))


def test_pages_and_the_admin_never_show_the_key(client, owner, conversation, canary_key):
    """Every page of the chat, and the admin's persona form (which asks the model server for
    its models with the key), rendered for a superuser."""
    owner.is_staff = owner.is_superuser = True
    owner.save()
    client.force_login(owner)
    persona = Persona.objects.first()
    urls = [
        reverse("chat"),
        reverse("new_conversation"),
        reverse("conversation", args=[conversation.pk]),
        reverse("admin:conversations_persona_changelist"),
        reverse("admin:conversations_persona_change", args=[persona.pk]),
        reverse("admin:conversations_persona_add"),
    ]
    for url in urls:
        response = client.get(url, follow=True)
        assert response.status_code == 200, url
        assert_no_key(url, response.content.decode())


def test_the_debug_error_page_hides_the_key(settings):
    """With DJANGO_DEBUG=1 an exception shows Django's technical page, settings included.
    The setting's name (…API…KEY) makes Django's filter hide it; renaming it to something
    like OPENAI_TOKEN would put the key on the page."""
    settings.OPENAI_API_KEY = CANARY
    settings.DEBUG = True
    request = RequestFactory().get("/boom/")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        response = technical_500_response(request, *sys.exc_info())
    text = response.content.decode()
    assert "OPENAI_API_KEY" in text
    assert_no_key("the debug error page", text)


def server_error_echoing_the_key() -> openai.BadRequestError:
    request = httpx.Request("POST", "http://model.internal/v1/chat/completions")
    message = (
        f"Invalid header: Authorization: Bearer {CANARY} is not allowed here "
        f"(normalized: BEARER {CANARY.upper()})"
    )
    return openai.BadRequestError(
        message,
        response=httpx.Response(400, request=request),
        body={"error": {"message": message, "type": "invalid_request_error"}},
    )


def test_a_model_server_that_echoes_the_key_in_its_error_puts_it_nowhere(settings, caplog):
    """Some OpenAI-compatible servers and proxies quote the request in a 400's message, some
    in capitals. The reply says a sentence of our own, and the server's words, logged for the
    operator, lose the key first: or the log, and before it every tab of the conversation and
    the database, would carry it."""
    settings.OPENAI_API_KEY = CANARY
    caplog.set_level(logging.INFO)
    error = llm.describe_error(server_error_echoing_the_key(), "gpt-4o-mini")
    assert "HTTP 400" in error.message and "Invalid header" not in error.message
    assert "Invalid header" in caplog.text
    assert_no_key("the reply's error", error.message.lower())
    assert_no_key("a log record", everything_logged(caplog).lower())
