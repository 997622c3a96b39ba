"""Edit on an answer: the user's own version goes beside the model's (which stays, a version
away), is chosen, is marked as theirs, and is what the next answer reads; no model is asked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from conversations.models import Message, ModelCall, Role, Status
from tests.conversations.chat_client import ChatSocket

pytestmark = [pytest.mark.django_db(transaction=True)]

REWRITTEN = "Use **three** eggs, not two."


async def ask(socket: ChatSocket, text: str, client_id: str) -> dict:
    await socket.send({"type": "message.send", "client_id": client_id, "content": text})
    return (await socket.until("reply.ended"))["message"]


async def test_an_edited_answer_is_a_version_the_next_answer_reads(
    owner, conversation, model_server
):
    async with ChatSocket(owner, conversation.pk) as socket:
        first = await ask(socket, "How many eggs?", "m1")
        calls = await database_sync_to_async(ModelCall.objects.count)()
        await socket.send({"type": "answer.edit", "message_id": first["id"], "content": REWRITTEN})
        change = await socket.until("version.selected")
        [edited] = change["messages"]
        assert edited["content"] == REWRITTEN and edited["edited"] is True
        assert (edited["version"], edited["versions"]) == (2, 2)
        assert edited["parent_id"] == first["parent_id"]
        assert (edited["model"], edited["parameters"]) == ("", None)
        # No model was asked for it.
        assert await database_sync_to_async(ModelCall.objects.count)() == calls

        await ask(socket, "And the flour?", "m2")
    history = model_server.config.requests[-1]["messages"]
    assert {"role": "assistant", "content": REWRITTEN} in history
    assert not any(m["content"] == first["content"] for m in history)
    # The model's answer is kept, a version away.
    model_answer = await database_sync_to_async(Message.objects.get)(pk=first["id"])
    assert model_answer.content == first["content"] and not model_answer.edited


async def test_only_a_written_answer_of_this_conversation_can_be_edited(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        first = await ask(socket, "Hello", "m1")
        for frame, code in [
            ({"message_id": first["parent_id"], "content": "x"}, "not_found"),
            ({"message_id": first["id"], "content": "   "}, "empty_message"),
            ({"message_id": first["id"]}, "invalid"),
        ]:
            await socket.send({"type": "answer.edit", **frame})
            assert (await socket.until("error"))["code"] == code
        # Streaming, with the lease of a process still writing it.
        await database_sync_to_async(Message.objects.filter(pk=first["id"]).update)(
            status=Status.STREAMING, lease_expires_at=timezone.now() + timedelta(minutes=1)
        )
        await socket.send({"type": "answer.edit", "message_id": first["id"], "content": "x"})
        assert (await socket.until("error"))["code"] == "reply_in_progress"
    count = await database_sync_to_async(
        Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).count
    )()
    assert count == 1


async def test_a_reply_no_process_writes_any_more_does_not_stand_in_the_way(owner, conversation):
    """Left streaming by a process that died (its lease ran out): swept, as before a message."""
    async with ChatSocket(owner, conversation.pk) as socket:
        first = await ask(socket, "Hello", "m1")
        await database_sync_to_async(Message.objects.filter(pk=first["id"]).update)(
            status=Status.STREAMING, lease_expires_at=timezone.now() - timedelta(minutes=1)
        )
        await socket.send({"type": "answer.edit", "message_id": first["id"], "content": "Mine"})
        [edited] = (await socket.until("version.selected"))["messages"]
    assert edited["content"] == "Mine"
    swept = await database_sync_to_async(Message.objects.get)(pk=first["id"])
    assert swept.status == Status.INTERRUPTED
