"""One row in the usage ledger per model call: a continuation writes its own row with its own
tokens (the continued answer's row keeps its call's), and the title the app asks for after a
first answer writes one too (kind `title`), counted in the user's usage and quotas but not
against their messages per minute. Through the simulator over HTTP with the real SDK."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from conversations import services, usage
from conversations.errors import ChatError
from conversations.models import CallKind, Message, ModelCall, Quota, Status
from tests.conversations.chat_client import ChatSocket, settle

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer"),
]


@database_sync_to_async
def calls_of(user) -> list[ModelCall]:
    return list(ModelCall.objects.filter(user=user).order_by("id"))


@database_sync_to_async
def reply_usage(reply_id):
    return Message.objects.with_usage().get(pk=reply_id).usage


async def test_a_continuation_is_a_call_with_a_row_and_tokens_of_its_own(owner, conversation):
    conversation.max_completion_tokens = 5
    await database_sync_to_async(conversation.save)()
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Explain everything")
        cut = (await socket.until("reply.ended"))["message"]
        await socket.send({"type": "reply.continue", "client_id": "more-1"})
        await socket.until("message.updated")
        ended = (await socket.until("reply.ended"))["message"]

    answer, continuation = await calls_of(owner)
    assert answer.kind == CallKind.REPLY and continuation.kind == CallKind.CONTINUATION
    assert continuation.continues_id == answer.pk
    # Each row holds its own call's tokens: the answer's was not added to.
    assert answer.completion_tokens == cut["usage"]["completion_tokens"] == 5
    assert continuation.completion_tokens == 5 and continuation.prompt_tokens > 0
    assert continuation.status == Status.TRUNCATED and continuation.ended_at is not None
    # The answer shows both calls' tokens, in its frame, on the page and in the totals.
    assert ended["usage"]["completion_tokens"] == 10
    assert ended["usage"]["prompt_tokens"] == answer.prompt_tokens + continuation.prompt_tokens
    shown = await reply_usage(cut["id"])
    assert (shown.prompt_tokens, shown.completion_tokens) == (
        ended["usage"]["prompt_tokens"],
        10,
    )
    totals = await database_sync_to_async(usage.conversation_totals)(conversation)
    assert totals.completion_tokens == 10 and totals.replies == 2


async def test_a_continuation_without_usage_from_the_server_is_estimated_in_its_own_row(
    owner, conversation, model_server
):
    conversation.max_completion_tokens = 5
    await database_sync_to_async(conversation.save)()
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Explain everything")
        cut = (await socket.until("reply.ended"))["message"]
        model_server.config.send_usage = False
        await socket.send({"type": "reply.continue", "client_id": "more-1"})
        await socket.until("message.updated")
        ended = (await socket.until("reply.ended"))["message"]

    answer, continuation = await calls_of(owner)
    assert not answer.estimated and continuation.estimated
    assert continuation.completion_tokens > 0
    assert ended["usage"]["estimated"] and not cut["usage"]["estimated"]


async def test_the_title_request_writes_a_row_of_its_own(owner, conversation, settings):
    settings.CHAT_MODEL_TITLES = True
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Omelettes: how do I keep them soft and fluffy every single time?")
        await socket.until("reply.ended")
        await socket.until("conversation.updated")  # the model's title, after the answer
        await settle()

    reply, title = await calls_of(owner)
    assert reply.kind == CallKind.REPLY and title.kind == CallKind.TITLE
    assert title.conversation_id == conversation.pk and title.model == reply.model
    assert title.prompt_tokens > 0 and title.completion_tokens > 0 and not title.estimated
    assert title.status == Status.COMPLETE and title.ended_at is not None
    # The user's figures count it: the tokens were spent for them.
    (day,) = await database_sync_to_async(usage.daily_usage)(since=timezone.localdate())
    assert day.totals.total == reply.total_tokens + title.total_tokens
    assert day.totals.replies == 2


async def test_a_title_without_usage_from_the_server_is_estimated(
    owner, conversation, settings, model_server
):
    settings.CHAT_MODEL_TITLES = True
    model_server.config.send_usage = False
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Omelettes: how do I keep them soft and fluffy every single time?")
        await socket.until("reply.ended")
        await socket.until("conversation.updated")
        await settle()
    _reply, title = await calls_of(owner)
    assert title.kind == CallKind.TITLE and title.estimated
    assert title.prompt_tokens > 0 and title.completion_tokens > 0


def test_title_calls_count_in_quotas_but_not_against_messages_per_minute(
    owner, conversation, settings
):
    settings.CHAT_MESSAGES_PER_MINUTE = 1
    now = timezone.now()
    ModelCall.objects.create(
        user=owner,
        started_at=now,
        conversation_id=conversation.pk,
        kind=CallKind.TITLE,
        prompt_tokens=40,
        completion_tokens=6,
        status=Status.COMPLETE,
        ended_at=now,
    )
    # The app's title call is not one of the user's messages: the first message passes, and
    # the second is the one over the limit.
    services.post_message(
        user=owner, conversation_id=conversation.pk, content="Hello", client_id="first"
    )
    Message.objects.filter(status=Status.STREAMING).update(status=Status.COMPLETE)
    with pytest.raises(ChatError) as refused:
        services.post_message(
            user=owner, conversation_id=conversation.pk, content="Again", client_id="second"
        )
    assert refused.value.code == "rate_limited"
    # Its tokens are the user's for the quotas.
    Quota.objects.create(user=owner, tokens_per_day=40)
    Message.objects.filter(status=Status.STREAMING).update(status=Status.COMPLETE)
    settings.CHAT_MESSAGES_PER_MINUTE = 100
    with pytest.raises(ChatError) as over:
        services.post_message(
            user=owner, conversation_id=conversation.pk, content="More", client_id="third"
        )
    assert over.value.code == "quota_exceeded"
