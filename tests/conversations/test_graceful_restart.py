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

from conversations import lifecycle, replies, services
from conversations.llm import TITLE_INSTRUCTION
from conversations.models import CallKind, ModelCall, Role, Status
from tests.multiprocess.remote import RemoteSocket
from tests.servers import Daphne, session_cookie

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer"),
]

GRACE_SECONDS = 2.0
QUESTION = "Tide pools: what lives in them, and how does it last through the low tide?"


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


async def test_sigterm_lets_a_title_asked_after_a_finished_answer_be_saved(
    owner, personas, sim_server
):
    """A first answer that ends after SIGTERM asks for its conversation's title; the process
    waits for it in the grace time before it ends its database thread (it used to stop at
    once, and the title failed with "cannot schedule new futures after shutdown")."""
    sim_server.config.reset()
    conversation = await database_sync_to_async(services.start_conversation)(user=owner)
    cookie = await database_sync_to_async(session_cookie)(owner)
    server = Daphne(
        OPENAI_BASE_URL=sim_server.base_url,
        OPENAI_API_KEY="sk-test",
        CHAT_SHUTDOWN_GRACE_SECONDS="6",
        LOG_LEVEL="WARNING",
    )
    await asyncio.to_thread(server.start)
    try:
        async with RemoteSocket(server.url, conversation.pk, cookie) as tab:
            await tab.until("ready")
            # The delay holds the title's answer as long as the reply's first token: the
            # title is still being written well after the answer has ended.
            await tab.say(f"{QUESTION} [[sim:delay=1,tps=200]]")
            await tab.until("reply.delta")
            os.killpg(server.process.pid, signal.SIGTERM)
            ended = await tab.until("reply.ended")
            renamed = await tab.until("conversation.updated", timeout=10)
        exit_code = await asyncio.to_thread(server.process.wait, 15)
        log = server.output()
    finally:
        await asyncio.to_thread(server.stop)
    assert ended["message"]["status"] == Status.COMPLETE
    assert exit_code is not None
    assert "failed" not in log and "Traceback" not in log

    @database_sync_to_async
    def stored():
        conversation.refresh_from_db()
        return conversation.title, list(
            ModelCall.objects.filter(
                conversation_id=conversation.pk, kind=CallKind.TITLE
            ).values_list("status", flat=True)
        )

    title, calls = await stored()
    assert renamed["conversation"]["title"] == title
    assert title == "Tide pools: what lives in" != services.title_from(QUESTION)
    assert calls == [Status.COMPLETE]


async def test_a_title_not_written_in_the_grace_time_is_given_up_and_its_call_kept(
    owner, model_server, settings, monkeypatch
):
    """After the grace time the title's request is cancelled before the database thread ends:
    the first message stays the title, and the usage ledger keeps the call, interrupted."""
    monkeypatch.setattr(lifecycle, "_draining", False)  # shut_down sets it; put back after
    settings.CHAT_SHUTDOWN_GRACE_SECONDS = 0.3
    conversation = await database_sync_to_async(services.start_conversation)(user=owner)
    await database_sync_to_async(services.rename_conversation)(
        user=owner, conversation_id=conversation.pk, title="Cut"
    )
    replies.title_later(conversation, "Cut", "Slow [[sim:delay=30]]", conversation.effective_model)
    stopped = []
    await lifecycle.shut_down(lambda: stopped.append(True))
    assert stopped == [True]
    assert replies.pending_titles() == []

    @database_sync_to_async
    def stored():
        conversation.refresh_from_db()
        calls = ModelCall.objects.filter(conversation_id=conversation.pk, kind=CallKind.TITLE)
        return conversation.title, list(calls.values_list("status", "completion_tokens"))

    assert await stored() == ("Cut", [(Status.INTERRUPTED, None)])
    assert any(
        body["messages"][0]["content"] == TITLE_INSTRUCTION for body in model_server.config.requests
    )
