"""With Redis, a reply generated in one server process reaches a socket on another."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import websockets
from channels.db import database_sync_to_async

from conversations import services
from conversations.models import Status
from tests.conversations.chat_client import ChatSocket
from tests.servers import Daphne, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.multiprocess]


async def test_a_reply_generated_in_another_process_streams_to_this_one(
    owner, personas, model_server, redis_url
):
    conversation = await database_sync_to_async(services.start_conversation)(user=owner)
    cookie = await database_sync_to_async(session_cookie)(owner)
    other = Daphne(
        REDIS_URL=redis_url,
        OPENAI_BASE_URL=model_server.base_url,
        OPENAI_API_KEY="sk-test",
        CHAT_FLUSH_SECONDS="0.2",
    )
    await asyncio.to_thread(other.start)
    try:
        url = f"ws://127.0.0.1:{other.port}/ws/conversations/{conversation.pk}/"
        headers = {"Cookie": cookie, "Origin": "http://127.0.0.1"}
        async with (
            ChatSocket(owner, conversation.pk) as here,
            websockets.connect(url, additional_headers=headers) as there,
        ):
            assert json.loads(await there.recv())["type"] == "ready"
            await here.until("ready")
            model_server.config.tokens_per_second = 60
            await there.send(
                json.dumps(
                    {
                        "type": "message.send",
                        "client_id": uuid.uuid4().hex,
                        "content": "Hello from the other process [[sim:tokens=40]]",
                    }
                )
            )
            ended = await here.until("reply.ended", timeout=20)
        reply_id = ended["message"]["id"]
        assert ended["message"]["status"] == Status.COMPLETE
        assert here.streamed_text(reply_id) == ended["message"]["content"] != ""
        assert len(here.of_type("reply.delta")) >= 10
    finally:
        await asyncio.to_thread(other.stop)
