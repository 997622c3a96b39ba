"""Versions benchmark: opening a conversation of many forks, and switching a version.

Builds, in a database of its own, a conversation of `--messages` messages on its active path
(1,000 by default) with a second version beside every tenth one (100 forks), and a small one
(10 messages, one fork) to compare with. It reports:

- the queries (and the time) to open each conversation's page: the same number for both, since
  the tree is walked in Python over one query (`conversations/tree.py`);
- the queries of one `version.select`, and its round trip: from the frame sent on the
  conversation's socket to the `version.selected` the socket receives, through the consumer,
  the database and the channel layer (in this process: the network is left out), median and
  p90 over `--switches` switches at a fork near the end of the path.

Usage:  python bench/versions.py [--messages 1000] [--every 10] [--switches 50]
With DATABASE_URL on PostgreSQL it measures there (in a database it creates and drops);
otherwise in a temporary SQLite file. It starts no server and no model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(database_url: str | None) -> None:
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "chatsite.settings"
    os.environ.pop("REDIS_URL", None)  # the in-memory layer: one process
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()


def build(user, *, messages: int, every: int):
    """A conversation whose active path has `messages` messages, with another version
    (older, not chosen) beside every `every`-th one."""
    from django.utils import timezone

    from conversations import services
    from conversations.models import Message, Role, Status

    conversation = services.start_conversation(user=user)
    now = timezone.now()
    rows = [
        Message(
            conversation=conversation,
            role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
            content=f"message {i} " + "words " * 40,
            status=Status.COMPLETE,
            created_at=now,
            selected_at=now,
        )
        for i in range(messages)
    ]
    Message.objects.bulk_create(rows)
    for before, row in zip([None, *rows], rows, strict=False):
        row.parent_id = before.pk if before else None
    Message.objects.bulk_update(rows, ["parent"], batch_size=500)
    versions = [
        Message(
            conversation=conversation,
            role=row.role,
            content=f"another version of message {i}",
            status=Status.COMPLETE,
            parent_id=row.parent_id,
            created_at=now,
            selected_at=now.replace(year=2000),
        )
        for i, row in enumerate(rows)
        if i % every == every - 1
    ]
    Message.objects.bulk_create(versions)
    return conversation, rows, len(versions)


def open_page(client, conversation) -> tuple[int, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    url = reverse("conversation", args=[conversation.pk])
    client.get(url)  # warm: templates, the session
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.status_code
    return len(queries), elapsed


async def switch_round_trips(user, conversation, fork_id: int, switches: int) -> list[float]:
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from conversations.consumers import FRAMES_PER_SECOND
    from conversations.routing import websocket_urlpatterns

    communicator = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/conversations/{conversation.pk}/"
    )
    communicator.scope["user"] = user
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    ready = await communicator.receive_json_from(timeout=10)
    assert ready["type"] == "ready", ready
    times = []
    for n in range(switches):
        await asyncio.sleep(1 / FRAMES_PER_SECOND)  # within the socket's flood limit
        frame = {"type": "version.select", "message_id": fork_id, "version": 1 + n % 2}
        started = time.perf_counter()
        await communicator.send_json_to(frame)
        while (reply := await communicator.receive_json_from(timeout=10))["type"] != (
            "version.selected"
        ):
            if reply["type"] == "error":
                raise RuntimeError(reply)
        times.append(time.perf_counter() - started)
    await communicator.disconnect()
    return times


def switch_queries(user, conversation, fork_id: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from conversations import services

    with CaptureQueriesContext(connection) as queries:
        services.select_version(
            user=user, conversation_id=conversation.pk, message_id=fork_id, version=2
        )
    return len(queries)


def drop_database(settings: dict) -> None:
    """Drop the benchmark's PostgreSQL database, whatever connections (the pool's, the socket
    threads') still hold it."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or None,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(settings["NAME"])
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--switches", type=int, default=50)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="bench-versions-")
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{workdir}/bench.sqlite3"
    setup(url)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from conversations.starter import ensure_starter_personas

    postgres = connection.vendor == "postgresql"
    old_name = None
    if postgres:  # a database of its own, dropped at the end
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    else:
        call_command("migrate", verbosity=0)
    setup_test_environment()
    try:
        ensure_starter_personas()
        user = get_user_model().objects.create_user("bench-versions", password="x")
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        client.force_login(user)
        small, _small_rows, small_forks = build(user, messages=10, every=5)
        large, rows, forks = build(user, messages=args.messages, every=args.every)
        small_queries, small_time = open_page(client, small)
        large_queries, large_time = open_page(client, large)
        fork = [row for i, row in enumerate(rows) if i % args.every == args.every - 1][-1]
        select_queries = switch_queries(user, large, fork.pk)
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"
        times = asyncio.run(switch_round_trips(user, large, fork.pk, args.switches))
    finally:
        if old_name is not None:
            drop_database(connection.settings_dict)

    ms = sorted(t * 1000 for t in times)
    print(f"database: {connection.vendor}")
    print("| conversation | messages on the path | forks | queries to open | page time |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| small | 10 | {small_forks} | {small_queries} | {small_time * 1000:.0f} ms |")
    print(f"| large | {args.messages} | {forks} | {large_queries} | {large_time * 1000:.0f} ms |")
    print()
    print(
        f"version switch: {select_queries} queries (one UPDATE); round trip over the socket "
        f"(in process) p50 {statistics.median(ms):.1f} ms, "
        f"p90 {ms[int(len(ms) * 0.9) - 1]:.1f} ms over {len(ms)} switches"
    )
    if large_queries != small_queries:
        sys.exit("the large conversation took more queries to open than the small one")


if __name__ == "__main__":
    main()
