"""The context budget of a call follows its model's window: the model list's, where the admin
set one, else CHAT_CONTEXT_TOKENS_PER_MODEL, else CHAT_CONTEXT_TOKENS."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async

from conversations import catalog, replies, services
from conversations.models import ChatModel, Message, Role, Status
from tests.paths import bulk_append

from .chat_client import settle


@pytest.mark.django_db
def test_the_model_lists_window_comes_before_the_settings(settings):
    settings.CHAT_CONTEXT_TOKENS = 16_000
    settings.CHAT_CONTEXT_TOKENS_PER_MODEL = {"sim-1": 8_000, "gpt-4o": 64_000}
    ChatModel.objects.create(name="sim-1", context_window=1_000)
    ChatModel.objects.create(name="gpt-4o")  # no window of its own

    windows = catalog.context_windows(["sim-1", "gpt-4o", "unknown"])

    assert windows == {"sim-1": 1_000, "gpt-4o": 64_000, "unknown": 16_000}
    assert catalog.model_info("sim-1").context_window == 1_000


def long_history(conversation, count: int = 30) -> None:
    bulk_append(
        Message(
            conversation=conversation,
            role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
            content=f"message {i}: " + "word " * 60,
            status=Status.COMPLETE,
        )
        for i in range(count)
    )


async def ask(owner, conversation) -> None:
    await replies.post(
        user=owner, conversation_id=conversation.pk, content="And now?", client_id=uuid.uuid4().hex
    )
    await settle()


@pytest.mark.django_db(transaction=True)
async def test_a_small_window_sends_fewer_messages_and_the_picker_changes_it(
    owner, personas, model_server, settings, isolated_channel_layer
):
    settings.CHAT_CONTEXT_TOKENS = 100_000
    await ChatModel.objects.acreate(name="sim-1", context_window=400)
    await ChatModel.objects.acreate(name="gpt-4o-mini")
    conversation = await database_sync_to_async(services.start_conversation)(user=owner)
    await database_sync_to_async(long_history)(conversation)

    await database_sync_to_async(services.update_conversation_settings)(
        user=owner, conversation_id=conversation.pk, values={"model": "sim-1"}
    )
    await ask(owner, conversation)
    small = model_server.config.requests[-1]
    await database_sync_to_async(services.update_conversation_settings)(
        user=owner, conversation_id=conversation.pk, values={"model": "gpt-4o-mini"}
    )
    await ask(owner, conversation)
    large = model_server.config.requests[-1]

    assert small["model"] == "sim-1" and large["model"] == "gpt-4o-mini"
    assert 1 < len(small["messages"]) < 10
    assert len(large["messages"]) > 30
