"""Two daphne processes on PostgreSQL and Redis: a reply made by one reaches, obeys and is
cleaned up by the other.

Process A (`generator`) reaches the model; process B (`observer`) has no model it could reach,
so whatever streams on B's sockets was generated on A.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.db import database_sync_to_async

from conversations import services
from conversations.models import Message, Status
from tests.servers import Daphne, session_cookie

from .conftest import server_env, start_all
from .remote import RemoteSocket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.multiprocess]


@pytest.fixture
async def chat(owner, personas):
    conversation = await database_sync_to_async(services.start_conversation)(user=owner)
    cookie = await database_sync_to_async(session_cookie)(owner)
    return conversation, cookie


@database_sync_to_async
def stored(reply_id: int) -> Message:
    return Message.objects.get(pk=reply_id)


async def test_a_reply_generated_in_one_process_streams_to_a_socket_on_the_other(
    chat, generator, observer, model_server
):
    conversation, cookie = chat
    async with (
        RemoteSocket(generator.url, conversation.pk, cookie) as here,
        RemoteSocket(observer.url, conversation.pk, cookie) as there,
    ):
        await here.until("ready")
        await there.until("ready")
        await here.say("Hello from process A [[sim:tps=60,tokens=40]]")
        ended = await there.until("reply.ended", timeout=20)
        await here.until("reply.ended", timeout=20)
    reply_id = ended["message"]["id"]
    assert ended["message"]["status"] == Status.COMPLETE
    assert there.streamed_text(reply_id) == ended["message"]["content"] != ""
    assert len(there.of_type("reply.delta")) >= 10
    assert here.streamed_text(reply_id) == ended["message"]["content"]
    assert (await stored(reply_id)).content == ended["message"]["content"]


async def test_stop_sent_through_the_other_process_stops_the_reply(
    chat, generator, observer, model_server
):
    conversation, cookie = chat
    async with (
        RemoteSocket(generator.url, conversation.pk, cookie) as here,
        RemoteSocket(observer.url, conversation.pk, cookie) as there,
    ):
        await here.until("ready")
        await there.until("ready")
        await here.say("Go on and on [[sim:tps=20,tokens=400]]")
        delta = await there.until("reply.delta", timeout=20)
        await there.send({"type": "reply.stop", "reply_id": delta["reply_id"]})
        ended_there = await there.until("reply.ended", timeout=10)
        ended_here = await here.until("reply.ended", timeout=10)
    assert ended_there["message"]["status"] == Status.STOPPED
    assert ended_here["message"]["status"] == Status.STOPPED
    reply = await stored(delta["reply_id"])
    assert reply.status == Status.STOPPED
    assert reply.content == ended_there["message"]["content"] != ""
    assert reply.completion_tokens is None or reply.completion_tokens < 400


async def test_killing_the_generating_process_interrupts_the_reply_and_tells_the_tabs(
    chat, observer, model_server, redis_url, sim_server, django_db_blocker
):
    """SIGKILL, as a crash or the OOM killer does: nothing in the dying process runs. The
    reply's lease (3 s here) runs out; a socket on the other process that shows the reply
    sweeps it to `interrupted` and tells every tab, keeping what was saved."""
    lease = 3.0
    conversation, cookie = chat
    doomed = Daphne(**server_env(redis_url, sim_server.base_url, CHAT_LEASE_SECONDS=str(lease)))
    await asyncio.to_thread(start_all, doomed)
    try:
        async with (
            RemoteSocket(doomed.url, conversation.pk, cookie) as sender,
            RemoteSocket(observer.url, conversation.pk, cookie) as tab_one,
            RemoteSocket(observer.url, conversation.pk, cookie) as tab_two,
        ):
            for socket in (sender, tab_one, tab_two):
                await socket.until("ready")
            await sender.say("A long answer, please [[sim:tps=5,tokens=200]]")
            for _ in range(4):  # a second of streaming: saved at least once (every 0.2 s)
                delta = await tab_one.until("reply.delta", timeout=20)
            reply_id = delta["reply_id"]
            await asyncio.to_thread(doomed.kill)
            killed_at = time.monotonic()
            ended_one = await tab_one.until("reply.ended", timeout=lease + 5)
            ended_two = await tab_two.until("reply.ended", timeout=lease + 5)
            noticed_after = time.monotonic() - killed_at
    finally:
        await asyncio.to_thread(doomed.stop)
    for ended in (ended_one, ended_two):
        assert ended["message"]["id"] == reply_id
        assert ended["message"]["status"] == Status.INTERRUPTED
        assert ended["message"]["error"]
    assert noticed_after < lease + 5
    reply = await stored(reply_id)
    assert reply.status == Status.INTERRUPTED
    assert reply.content != ""  # what was saved before the death is kept
    assert reply.content == ended_one["message"]["content"]
    assert tab_one.streamed_text(reply_id).startswith(reply.content)
