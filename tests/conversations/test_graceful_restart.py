"""SIGTERM to a real daphne process: it stops taking messages, lets a reply that can finish in
the grace time finish, ends the others as `interrupted` (saved and told to the tab), and
exits."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import pytest
from channels.db import database_sync_to_async

from conversations import services
from conversations.models import Role, Status
from tests.multiprocess.remote import RemoteSocket
from tests.servers import Daphne, session_cookie

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer"),
]

GRACE_SECONDS = 2.0


def until_refused(port: int, timeout: float = 10) -> None:
    """Wait until the process takes no new connection: it has begun to shut down."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.01)
    raise AssertionError("the process still takes connections")


async def test_sigterm_finishes_what_it_can_and_interrupts_the_rest(owner, personas, sim_server):
    sim_server.config.reset()
    short, long = await database_sync_to_async(
        lambda: [services.start_conversation(user=owner) for _ in range(2)]
    )()
    cookie = await database_sync_to_async(session_cookie)(owner)
    server = Daphne(
        OPENAI_BASE_URL=sim_server.base_url,
        OPENAI_API_KEY="sk-test",
        CHAT_SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
        CHAT_FLUSH_SECONDS="0.2",
        LOG_LEVEL="WARNING",
    )
    await asyncio.to_thread(server.start)
    try:
        async with (
            RemoteSocket(server.url, short.pk, cookie) as finishing,
            RemoteSocket(server.url, long.pk, cookie) as cut,
        ):
            await finishing.until("ready")
            await cut.until("ready")
            await finishing.say("Short [[sim:tps=100]]")
            await cut.say("Long [[sim:tps=20,tokens=400]]")
            await finishing.until("reply.delta")
            await cut.until("reply.delta")
            signalled = time.monotonic()
            os.killpg(server.process.pid, signal.SIGTERM)
            await asyncio.to_thread(until_refused, server.port)
            await cut.say("One more while it shuts down")
            refused = await cut.until("error")
            done = await finishing.until("reply.ended")
            ended = await cut.until("reply.ended", timeout=GRACE_SECONDS + 5)
            interrupted_after = time.monotonic() - signalled
        exit_code = await asyncio.to_thread(server.process.wait, 15)
    finally:
        await asyncio.to_thread(server.stop)
    assert refused["code"] == "server_restarting" and refused["message"]
    assert done["message"]["status"] == Status.COMPLETE
    assert ended["message"]["status"] == Status.INTERRUPTED and ended["message"]["error"]
    assert GRACE_SECONDS <= interrupted_after < GRACE_SECONDS + 3
    assert exit_code is not None

    @database_sync_to_async
    def reply_of(conversation):
        return conversation.messages.filter(role=Role.ASSISTANT).get()

    stored_short, stored_long = await reply_of(short), await reply_of(long)
    assert stored_short.status == Status.COMPLETE
    assert stored_long.status == Status.INTERRUPTED and stored_long.content and stored_long.error
    assert stored_long.lease_expires_at is None
