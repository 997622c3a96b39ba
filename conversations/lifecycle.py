"""A server process's end: on SIGTERM it stops taking new messages, lets its streaming replies
finish for up to `CHAT_SHUTDOWN_GRACE_SECONDS`, ends the rest as `interrupted` (saved, and told
to every tab, as a cancelled reply always is), gives the titles asked after finished answers the
grace time left, then lets daphne stop as it would have.

A rolling restart of several processes (docs/deploy.md) thus loses no reply that could finish
in the grace time; the page of a tab whose socket closes reconnects to another process.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import weakref
from typing import Any

from django.conf import settings
from twisted.internet.interfaces import IListeningPort

from . import replies

logger = logging.getLogger(__name__)

FRAMES_OUT_SECONDS = 0.3

_draining = False
_installed: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
# asyncio keeps only weak references to tasks.
_shutdown: set[asyncio.Task[None]] = set()


def draining() -> bool:
    """Whether this process is shutting down: it starts no new reply."""
    return _draining


def install() -> None:
    """Under daphne (twisted's reactor on this event loop), answer SIGTERM gracefully.

    Done once per loop, from the first socket; elsewhere (tests, the terminal chat) nothing.
    """
    loop = asyncio.get_running_loop()
    if loop in _installed:
        return
    _installed.add(loop)
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not getattr(reactor, "running", False):
        return

    def on_sigterm() -> None:
        if _draining:  # a second SIGTERM: already shutting down
            return
        # No new message from the moment no new connection is taken.
        start_draining()
        stop_listening(reactor)
        task = loop.create_task(shut_down(reactor.stop))
        _shutdown.add(task)
        task.add_done_callback(_shutdown.discard)

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)


def stop_listening(reactor: Any) -> None:
    """Accept no new connection: the address's other processes take them (they share its
    socket, `make serve`), while this one finishes what it has. A connection accepted by a
    process about to stop would be closed unanswered."""
    for reader in reactor.getReaders():
        if IListeningPort.providedBy(reader):
            reader.stopListening()


def start_draining() -> None:
    global _draining
    _draining = True


async def shut_down(stop: Any) -> None:
    """Drain this process's replies, then the titles asked after them, then call `stop`."""
    start_draining()
    grace = settings.CHAT_SHUTDOWN_GRACE_SECONDS
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    tasks = [r.task for r in replies.running_replies().values() if r.task is not None]
    logger.info("shutting down: %d answers being written, waiting up to %s s", len(tasks), grace)
    if tasks:
        cut = await _finish(tasks, deadline)  # each cut one saves itself as interrupted
        if cut:
            logger.info("shutting down: %d answers ended as interrupted", cut)
    # The titles asked after answers that ended, in the grace time left: after it, the first
    # message stays a conversation's title. Before `stop`, which ends the database thread.
    titles = replies.pending_titles()
    if titles:
        cut = await _finish(titles, deadline)
        if cut:
            logger.info("shutting down: %d conversation titles given up", cut)
    if tasks or titles:
        # The ends and titles were published; a moment for the sockets of this process to
        # pass them on before daphne closes them (a tab that misses one catches up when it
        # reconnects).
        await asyncio.sleep(FRAMES_OUT_SECONDS)
    stop()


async def _finish(tasks: list[asyncio.Task[None]], deadline: float) -> int:
    """Let `tasks` run until the event loop's clock reaches `deadline`, then cancel the rest
    and wait for them to end; how many were cancelled."""
    remaining = max(0.0, deadline - asyncio.get_running_loop().time())
    _done, pending = await asyncio.wait(tasks, timeout=remaining)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return len(pending)
