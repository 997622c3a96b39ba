"""daphne on uvloop's event loop: `python -m chatsite.serve [daphne's arguments]`.

daphne runs twisted's reactor on an asyncio event loop of its own, made when `daphne.server` is
first imported: made under uvloop's loop policy, it is uvloop's (libuv's, compiled), where the
event loop's own work (a socket's readiness, its reads and writes, a task's wake-up) costs less
CPU. Measured with replies arriving at random, with and without in turn (docs/benchmarks.md): a
fifth less CPU a reply on SQLite, a seventh on PostgreSQL + Redis. `CHAT_UVLOOP=0` keeps
asyncio's own loop.

`make run`, `make serve` (deploy/supervisord.conf), the tests' servers and the benchmarks all
start daphne this way.
"""

from __future__ import annotations

import asyncio
import os
import sys


def choose_event_loop() -> None:
    """Make the loops made from now on uvloop's, unless the settings say not."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    from django.conf import settings

    if settings.CHAT_UVLOOP:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: list[str]) -> None:
    if "daphne.server" in sys.modules:
        raise RuntimeError("daphne's loop is made already: choose the loop before importing it")
    choose_event_loop()
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
