"""The usage ledger: one row per model call, given its tokens when the reply ends (estimated and
marked so when the server sent none), and changed by nothing else. Deleting a conversation,
regenerating or editing an answer, importing a file: the ledger and every figure made from it
(per conversation, per user and day) stay as they were.

The replies come from the simulator over real HTTP, through the socket."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from conversations import context, services, usage
from conversations.models import Message, ModelCall, Role, Status
from tests.conversations.chat_client import ChatSocket, settle

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer"),
]

LEDGER_FIELDS = (
    "pk",
    "user_id",
    "conversation_id",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "estimated",
    "status",
)


@database_sync_to_async
def ledger(user) -> list[tuple]:
    return list(ModelCall.objects.filter(user=user).order_by("pk").values_list(*LEDGER_FIELDS))


@database_sync_to_async
def figures(user, conversation) -> tuple:
    """Every usage figure the app shows for this user: the conversation's total and the
    admin's rows per user, day and model."""
    today = timezone.localdate()
    daily = [
        (row.day, row.username, row.totals, row.models)
        for row in usage.daily_usage(since=today, user_id=user.pk)
    ]
    return usage.conversation_totals(conversation), daily


@database_sync_to_async
def last_reply(conversation) -> Message:
    return (
        conversation.messages.select_related("model_call")
        .filter(role=Role.ASSISTANT)
        .order_by("-id")
        .first()
    )


async def ask(socket: ChatSocket, text: str) -> dict:
    await socket.say(text)
    return await socket.until("reply.ended")


async def test_each_call_writes_one_row_that_takes_the_replys_tokens_when_it_ends(
    owner, conversation
):
    async with ChatSocket(owner, conversation.pk) as socket:
        ended = await ask(socket, "Tell me about pasta")
    await settle()
    reply = await last_reply(conversation)
    call = reply.model_call
    assert (await ledger(owner)) == [
        (
            call.pk,
            owner.pk,
            conversation.pk,
            reply.model,
            reply.prompt_tokens,
            reply.completion_tokens,
            False,
            Status.COMPLETE,
        )
    ]
    assert call.prompt_tokens > 0 and call.completion_tokens > 0 and call.ended_at is not None
    assert call.started_at == reply.created_at
    # What the socket and the page show is the ledger's.
    assert ended["message"]["usage"] == {
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "estimated": False,
    }


async def test_deleting_the_conversation_leaves_the_ledger_and_every_figure(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        await ask(socket, "Tell me about pasta")
        await ask(socket, "And rice?")
    await settle()
    rows, (total, daily) = await ledger(owner), await figures(owner, conversation)
    assert total.total > 0 and total.replies == 2 and daily[0][2] == total

    await database_sync_to_async(services.delete_conversation)(
        user=owner, conversation_id=conversation.pk
    )

    assert not await database_sync_to_async(Message.objects.filter(pk__gt=0).exists)()
    assert await ledger(owner) == rows
    assert await figures(owner, conversation) == (total, daily)


async def test_regenerating_keeps_the_replaced_answers_tokens_in_every_figure(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        await ask(socket, "Tell me about pasta")
        await settle()
        first_rows = await ledger(owner)
        first_total, _daily = await figures(owner, conversation)
        assert first_total.total > 0
        await socket.send({"type": "reply.regenerate", "client_id": "again"})
        await socket.until("reply.ended")
    await settle()
    rows = await ledger(owner)
    assert rows[:1] == first_rows and len(rows) == 2, "the replaced answer's row is unchanged"
    total, daily = await figures(owner, conversation)
    second = await last_reply(conversation)
    assert total.total == first_total.total + second.model_call.total_tokens
    assert total.replies == 2 and daily[0][2] == total


async def test_editing_keeps_the_dropped_answers_tokens_in_every_figure(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Recipe for bread")
        question = (await socket.until("message.created"))["message"]["id"]
        await socket.until("reply.ended")
        await settle()
        first_rows = await ledger(owner)
        first_total, _daily = await figures(owner, conversation)
        assert first_total.total > 0
        await socket.send(
            {"type": "message.edit", "client_id": "e1", "message_id": question, "content": "Cake"}
        )
        await socket.until("reply.ended")
    await settle()
    rows = await ledger(owner)
    assert rows[:1] == first_rows and len(rows) == 2
    total, daily = await figures(owner, conversation)
    second = await last_reply(conversation)
    assert total.total == first_total.total + second.model_call.total_tokens
    assert total.replies == 2 and daily[0][2] == total


async def test_a_stopped_answer_counts_what_it_used_estimated(owner, conversation, model_server):
    model_server.config.tokens_per_second = 40
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("A long story please [[sim:tokens=400]]")
        await socket.until("reply.delta")
        await socket.until("reply.delta")
        await socket.send({"type": "reply.stop"})
        await socket.until("reply.ended")
    await settle()
    reply = await last_reply(conversation)
    call = reply.model_call
    request = model_server.config.requests[-1]
    assert reply.status == Status.STOPPED and reply.content
    assert (call.status, call.estimated) == (Status.STOPPED, True)
    assert call.prompt_tokens == context.prompt_tokens(request["messages"], reply.model) > 0
    assert call.completion_tokens == context.count_tokens(reply.content, reply.model) > 0
    total, daily = await figures(owner, conversation)
    assert total.total == call.total_tokens and total.estimated == 1 and daily[0][2] == total


async def test_a_failed_answer_counts_what_it_used_estimated(owner, conversation, model_server):
    async with ChatSocket(owner, conversation.pk) as socket:
        await ask(socket, "Tell me a story [[sim:tokens=60,fault=drop:20,usage=none]]")
    await settle()
    reply = await last_reply(conversation)
    call = reply.model_call
    request = model_server.config.requests[-1]
    assert reply.status == Status.ERROR and reply.content, "what arrived is kept"
    assert (call.status, call.estimated) == (Status.ERROR, True)
    assert call.prompt_tokens == context.prompt_tokens(request["messages"], reply.model) > 0
    assert call.completion_tokens == context.count_tokens(reply.content, reply.model) > 0
    total, _daily = await figures(owner, conversation)
    assert total.total == call.total_tokens and total.estimated == 1


async def test_a_server_that_sends_no_usage_has_its_row_counted_and_marked(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        ended = await ask(socket, "Tell me about pasta [[sim:usage=none]]")
    await settle()
    call = (await last_reply(conversation)).model_call
    assert call.status == Status.COMPLETE and call.estimated and call.total_tokens > 0
    assert ended["message"]["usage"]["estimated"] is True


async def test_an_answer_with_token_probabilities_counts_its_tokens_by_them(owner, conversation):
    """A server that sends no usage but the probability of each token it wrote (asked for
    with Token confidence) has told how many it wrote: one probability a token."""
    await database_sync_to_async(services.update_conversation_settings)(
        user=owner, conversation_id=conversation.pk, values={"logprobs": True}
    )
    async with ChatSocket(owner, conversation.pk) as socket:
        ended = await ask(socket, "Tell me about pasta [[sim:tokens=40,usage=none]]")
    await settle()
    reply = await last_reply(conversation)
    call = reply.model_call
    assert reply.completion_tokens == call.completion_tokens == len(reply.logprobs) >= 40
    assert reply.completion_tokens != context.count_tokens(reply.content, reply.model)
    assert call.estimated and ended["message"]["usage"]["estimated"] is True


async def test_a_call_the_model_never_answered_is_a_row_with_no_tokens(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        await ask(socket, "Hello [[sim:fault=http:500]]")
    await settle()
    (row,) = await ledger(owner)
    assert row[4:] == (None, None, False, Status.ERROR)
