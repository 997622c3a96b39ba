"""Memory per idle socket: what an open chat tab that does nothing costs the server, and the
CPU its opening took.

The app runs as one or more daphne processes (as `bench/streams.py` starts them). The benchmark
logs in N users, each with a conversation, measures the resident memory of the app processes
(and Redis's own, with `REDIS_URL`) with no socket open, then with every user's socket open and
idle (each has received `ready`), and divides the difference by N; likewise the user + system
CPU the app processes spent from the first socket's handshake to the last one's `ready`
(the session, the user, the conversation and its streaming reply read for each). Sockets are
spread over the processes evenly. A connection and disconnection first warms each process, so
the imports and pools that the first socket pays for are not counted as the sockets'.

Usage:  python bench/idle_sockets.py [--sockets 1000] [--processes 1] [--write docs/benchmarks.md]
With DATABASE_URL on PostgreSQL and REDIS_URL set, it measures that stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from clients import make_sessions
from processes import ROOT, cpu_seconds, free_port, machine, start_daphne, wait_for


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def redis_used_mb(url: str) -> float | None:
    if not url:
        return None
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("memory")["used_memory"]) / 1024 / 1024
    finally:
        client.close()


async def hold_sockets(
    urls: list[str],
    sessions: list[tuple[str, str]],
    measure: object,
    settle: float,
    opened: object = None,
) -> object:
    """Open every socket, wait for `ready` on each (then call `opened`), let things settle,
    measure, close."""
    import websockets

    async def connect(index: int, cookie: str, conversation: str) -> object:
        base = urls[index % len(urls)]
        url = base.replace("http", "ws") + f"/ws/conversations/{conversation}/"
        socket = await websockets.connect(
            url,
            additional_headers={"Cookie": cookie, "Origin": base},  # a page of that server
        )
        frame = json.loads(await socket.recv())
        assert frame["type"] == "ready", frame
        return socket

    sockets = []
    # In batches: a thousand handshakes at once only measures the accept queue.
    for start in range(0, len(sessions), 100):
        batch = sessions[start : start + 100]
        sockets += await asyncio.gather(
            *(connect(start + i, cookie, conv) for i, (cookie, conv) in enumerate(batch))
        )
    if opened is not None:
        opened()  # type: ignore[operator]
    await asyncio.sleep(settle)
    result = measure()  # type: ignore[operator]
    await asyncio.gather(*(socket.close() for socket in sockets))  # type: ignore[attr-defined]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle before measuring")
    parser.add_argument("--write", default="", help="append the results to this markdown file")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="chat-idle-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-" + uuid.uuid4().hex),
        "LOG_LEVEL": "WARNING",
    }
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    if args.processes > 1 and not env.get("REDIS_URL"):
        sys.exit("Several processes need REDIS_URL (a shared channel layer).")
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from conversations.starter import ensure_starter_personas

    ensure_starter_personas()

    servers, urls = [], []
    for _ in range(args.processes):
        port = free_port()
        servers.append(start_daphne(port, env))
        urls.append(f"http://127.0.0.1:{port}")
    redis_url = env.get("REDIS_URL", "")
    try:
        for url in urls:
            wait_for(f"{url}/healthz")
        # Warm every process: one socket each, opened and closed.
        asyncio.run(hold_sockets(urls, make_sessions(len(urls)), lambda: None, 0.5))
        sessions = make_sessions(args.sockets)
        time.sleep(1.0)
        before = sum(rss_mb(s.pid) for s in servers)
        redis_before = redis_used_mb(redis_url)

        def measure() -> tuple[float, float | None]:
            return sum(rss_mb(s.pid) for s in servers), redis_used_mb(redis_url)

        cpu = [sum(cpu_seconds(s.pid) for s in servers)]
        after, redis_after = asyncio.run(
            hold_sockets(  # type: ignore[arg-type]
                urls,
                sessions,
                measure,
                args.settle,
                lambda: cpu.append(sum(cpu_seconds(s.pid) for s in servers)),
            )
        )
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=10)

    from django.db import connection

    per_socket_kb = (after - before) * 1024 / args.sockets
    opening_ms = (cpu[1] - cpu[0]) * 1000 / args.sockets
    redis_kb = (
        (redis_after - redis_before) * 1024 / args.sockets
        if redis_before is not None and redis_after is not None
        else None
    )
    layer = "Redis" if redis_url else "in-memory"
    report = "\n".join(
        [
            f"\n### {time.strftime('%Y-%m-%d')}: memory per idle socket, {args.processes} daphne "
            f"process(es), {connection.vendor}, {layer} channel layer\n",
            f"{args.sockets} logged-in sockets, each on its own conversation, open and idle for "
            f"{args.settle:g} s; {machine()}.\n",
            "| app processes, no socket (MB) | with the sockets (MB) | per idle socket (KB) "
            "| Redis per idle socket (KB) | app CPU per socket opened (ms) |",
            "| --- | --- | --- | --- | --- |",
            f"| {before:.0f} | {after:.0f} | {per_socket_kb:.1f} | "
            f"{f'{redis_kb:.2f}' if redis_kb is not None else 'n/a'} | {opening_ms:.2f} |",
        ]
    )
    print(report)
    if args.write:
        path = ROOT / args.write
        with path.open("a", encoding="utf-8") as out:
            out.write(report + "\n")


if __name__ == "__main__":
    main()
