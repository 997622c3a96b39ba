"""A model server that reports no usage (llama.cpp's Python server, some proxies) and a stopped
reply (which never receives it): the app counts the tokens itself, with the counter the context
window uses, and every place that shows them says the figure is estimated.

The simulator leaves the usage chunk out (`[[sim:usage=none]]`); the reply goes through the
real SDK over HTTP."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from conversations import context
from conversations.models import Message, Role, Status
from tests.conversations.chat_client import ChatSocket, settle
from tests.features.ledger import ledger_reply

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer"),
]


@database_sync_to_async
def last_reply(conversation) -> Message:
    return conversation.messages.filter(role=Role.ASSISTANT).order_by("-id").first()


async def test_a_server_that_sends_no_usage_gets_its_tokens_counted_and_marked_estimated(
    owner, conversation, model_server
):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Tell me about pasta [[sim:usage=none]]")
        ended = await socket.until("reply.ended")
    await settle()
    reply = await last_reply(conversation)
    request = model_server.config.requests[-1]
    assert request["stream_options"] == {"include_usage": True}, "asked, and not answered"

    assert reply.status == Status.COMPLETE and reply.usage_estimated
    assert reply.prompt_tokens == context.prompt_tokens(request["messages"], reply.model) > 0
    assert reply.completion_tokens == context.count_tokens(reply.content, reply.model) > 0
    assert ended["message"]["usage"] == {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "estimated": True,
    }


async def test_a_reported_usage_is_kept_as_reported(owner, conversation, model_server):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Tell me about pasta")
        ended = await socket.until("reply.ended")
    reply = await last_reply(conversation)
    assert reply.prompt_tokens and reply.completion_tokens
    assert not reply.usage_estimated and ended["message"]["usage"]["estimated"] is False


async def test_a_stopped_reply_gets_its_tokens_counted_and_marked_estimated(
    owner, conversation, model_server
):
    model_server.config.tokens_per_second = 40
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("A long story please [[sim:tokens=400]]")
        await socket.until("reply.delta")
        await socket.until("reply.delta")
        await socket.send({"type": "reply.stop"})
        ended = await socket.until("reply.ended")
    await settle()
    reply = await last_reply(conversation)
    request = model_server.config.requests[-1]
    assert reply.status == Status.STOPPED and reply.content
    assert reply.usage_estimated and ended["message"]["usage"]["estimated"] is True
    assert reply.prompt_tokens == context.prompt_tokens(request["messages"], reply.model)
    assert reply.completion_tokens == context.count_tokens(reply.content, reply.model)


async def test_a_reply_the_model_never_answered_counts_nothing(owner, conversation, model_server):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Hello [[sim:fault=http:500]]")
        await socket.until("reply.ended")
    reply = await last_reply(conversation)
    assert reply.status == Status.ERROR
    assert (reply.prompt_tokens, reply.completion_tokens, reply.usage_estimated) == (
        None,
        None,
        False,
    )


def estimated_reply(conversation, prompt, completion, *, estimated):
    return ledger_reply(conversation, prompt, completion, estimated=estimated)


@pytest.mark.parametrize(
    ("language", "line", "parameters", "title"),
    [
        (
            "en",
            "≈ 1,234 tokens (1,200 in · 34 out)",
            "≈ 1200 in · 34 out (estimated)",
            "≈ 1,300 tokens (1,250 in · 50 out)",
        ),
        (
            "ko",
            "토큰 약 1,234개 (입력 1,200 · 출력 34, 추정)",
            "입력 약 1200 · 출력 약 34 (추정)",
            "토큰 약 1,300개 (입력 1,250 · 출력 50, 추정)",
        ),
    ],
)
def test_the_page_marks_an_estimated_figure_and_a_total_that_holds_one(
    client, owner, conversation, language, line, parameters, title
):
    estimated_reply(conversation, 1200, 34, estimated=True)
    estimated_reply(conversation, 50, 16, estimated=False)
    client.force_login(owner)
    page = client.get(
        reverse("conversation", args=[conversation.pk]), HTTP_ACCEPT_LANGUAGE=language
    ).content.decode()
    assert f">{line}</span>" in page  # the answer's usage line
    assert 'data-usage-estimated="true"' in page
    assert f"<dd>{parameters}</dd>" in page  # its Parameters
    assert f">{title}</p>" in page and 'data-estimated="1"' in page  # the header's total
