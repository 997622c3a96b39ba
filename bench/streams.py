"""Streaming benchmark: N logged-in WebSocket clients each send a message at once.

The simulator runs in its own process at a fixed pace; the app runs as a daphne process (or
several) pointed at it. For each N the benchmark measures, in the same run:

- time to first token through the app, and through a direct `AsyncOpenAI` stream from the same
  simulator with the same concurrency; the difference is what the app adds (p50, p99);
- tokens delivered over tokens produced, and whether every delta arrived in order;
- server CPU seconds per 1,000 tokens and peak resident memory of the app processes;
- database statements per reply (PostgreSQL only: read from pg_stat_database).

Usage:  python bench/streams.py [--clients 1,50,200] [--tps 50] [--tokens 100]
        [--processes 1] [--rounds 3] [--samples 20] [--write docs/benchmarks.md]
With DATABASE_URL on PostgreSQL and REDIS_URL set, it measures that stack; otherwise SQLite and
the in-memory layer (one process).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from processes import ROOT, free_port, start_daphne, start_simulator, wait_for


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class RoundResult:
    clients: int
    app_ttft: list[float] = field(default_factory=list)
    direct_ttft: list[float] = field(default_factory=list)
    # The direct stream's first tokens timed from each request's own start, as rounds before
    # 2026-11-27 (third) timed them: that leaves out how long a request waited for the ones
    # sent before it, which the app's clients' clocks include.
    direct_ttft_own: list[float] = field(default_factory=list)
    produced: int = 0
    delivered: int = 0
    in_order: bool = True
    cpu_seconds: float = 0.0
    statements: int | None = None
    statements_per_reply: float | None = None
    rounds: int = 1
    saves_per_reply: float | None = None
    wall_seconds: float = 0.0


async def direct_chunks(client: Any, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """A stream as a plain client asks for it, `chat.completions.create`, read as the app reads
    a stream: its raw lines, one `json.loads` a chunk (`llm.chunks_of`)."""
    from conversations import llm

    async with client.chat.completions.with_streaming_response.create(**request) as response:
        async for chunk in llm.chunks_of(response.iter_lines()):
            yield chunk


async def direct_round(base_url: str, clients: int, prompt: str) -> list[tuple[float, float]]:
    """Time to first token straight from the simulator, same concurrency, same reading.

    A plain `AsyncOpenAI` client with the SDK's defaults, asking as its documentation shows
    (`direct_chunks`): what differs from the app round is what the app does around the
    model's stream, and how it asks for it.
    """
    from openai import AsyncOpenAI

    from conversations import llm

    client = AsyncOpenAI(api_key="bench", base_url=base_url, max_retries=0, timeout=120)
    request = llm.build_request(
        {"model": "gpt-4o-mini", "temperature": 1.0}, [{"role": "user", "content": prompt}]
    )

    async def one(burst_started: float) -> tuple[float, float]:
        """(from the burst's start, from this request's own) to its first token."""
        started = time.perf_counter()
        first = None
        async for chunk in direct_chunks(client, request):
            choices = chunk.get("choices") or []
            if first is None and choices and choices[0]["delta"].get("content"):
                first = time.perf_counter()
        if first is None:
            return float("nan"), float("nan")
        return first - burst_started, first - started

    try:
        await one(time.perf_counter())  # warm, as the app's client is: connected, SDK loaded
        # Every request's clock starts as the burst is asked for, as every client's does in
        # the app round: the last to be sent waited for the others to go first.
        started = time.perf_counter()
        return list(await asyncio.gather(*(one(started) for _ in range(clients))))
    finally:
        await client.close()


async def app_round(
    urls: list[str],
    sessions: list[tuple[str, str]],
    prompt: str,
    result: RoundResult,
    on_connected: Callable[[], None] | None = None,
) -> None:
    """Every socket connects, then all send at once; `on_connected` runs in between."""
    import websockets

    async def one(index: int, cookie: str, conversation_id: str) -> None:
        base = urls[index % len(urls)]
        url = base.replace("http", "ws") + f"/ws/conversations/{conversation_id}/"
        headers = {"Cookie": cookie, "Origin": base}  # a page of that server
        async with websockets.connect(url, additional_headers=headers, max_size=None) as socket:
            assert json.loads(await socket.recv())["type"] == "ready"
            connected.append(index)
            if len(connected) == len(sessions):
                if on_connected is not None:
                    on_connected()
                    await asyncio.sleep(PROFILER_ATTACH_SECONDS)
                burst.append(time.perf_counter())
                ready.set()
            await ready.wait()
            started = burst[0]
            await socket.send(
                json.dumps(
                    {"type": "message.send", "client_id": uuid.uuid4().hex, "content": prompt}
                )
            )
            first, seq, text = None, 0, ""
            while True:
                frame = json.loads(await socket.recv())
                if frame["type"] == "reply.delta":
                    if first is None:
                        first = time.perf_counter() - started
                    if frame["seq"] != seq + 1:
                        result.in_order = False
                    seq = frame["seq"]
                    text += frame["text"]
                elif frame["type"] == "reply.state":
                    seq, text = frame["seq"], frame["content"]
                elif frame["type"] == "reply.ended":
                    # Tokens delivered: the produced tokens, in the share of the final text
                    # that reached this client through the stream.
                    final = frame["message"]["content"]
                    produced = frame["message"]["usage"]["completion_tokens"] or 0
                    result.produced += produced
                    shown = len(text) if final.startswith(text) else 0
                    result.delivered += round(produced * shown / max(1, len(final)))
                    break
                elif frame["type"] == "error":
                    raise RuntimeError(frame)
            result.app_ttft.append(first if first is not None else float("nan"))

    ready = asyncio.Event()  # every socket connected: then all send at once
    burst: list[float] = []  # when they were told to: every first token is timed from then
    connected: list[int] = []
    await asyncio.gather(
        *(one(i, cookie, conversation) for i, (cookie, conversation) in enumerate(sessions))
    )


def make_sessions(count: int) -> list[tuple[str, str]]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from conversations import services

    sessions = []
    run = uuid.uuid4().hex[:6]
    for i in range(count):
        user = get_user_model().objects.create_user(f"bench-{run}-{i}", password=None)
        conversation = services.start_conversation(user=user)
        client = Client()
        client.force_login(user)
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        sessions.append((cookie, str(conversation.pk)))
    return sessions


def pg_statements() -> int | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            [connection.settings_dict["NAME"]],
        )
        return int(cursor.fetchone()[0])


# py-spy needs a moment to attach; the round's messages are sent once it has.
PROFILER_ATTACH_SECONDS = 1.0


def profiler(pid: int) -> subprocess.Popen[bytes]:
    """py-spy on the first app process, for BENCH_PROFILE_SECONDS (raw stacks, per thread).

    Started once every socket is connected, so the stacks are those of the burst of messages
    and their replies, not of the connects.
    """
    seconds = os.environ.get("BENCH_PROFILE_SECONDS", "3")
    command = ["py-spy", "record", "-p", str(pid), "-o", os.environ["BENCH_PROFILE"]]
    options = ["--format", "raw", "--threads", "--gil", "-d", seconds, "-r", "500"]
    return subprocess.Popen([*command, *options])


def start_profiler(spies: list[subprocess.Popen[bytes]], pid: int) -> None:
    spies.append(profiler(pid))


def measure(
    count: int,
    samples: int,
    least_rounds: int,
    servers: list[subprocess.Popen[bytes]],
    urls: list[str],
    base_url: str,
    prompt: str,
) -> RoundResult:
    """Rounds of `count` clients at once: enough for `samples` first tokens, and at least
    `least_rounds` (one round of N is one burst: its p99 is that of a single moment)."""
    result = RoundResult(clients=count)
    rounds = max(least_rounds, -(-samples // count))
    for index in range(rounds):
        sessions = make_sessions(count)
        for from_burst, from_own_start in asyncio.run(direct_round(base_url, count, prompt)):
            result.direct_ttft.append(from_burst)
            result.direct_ttft_own.append(from_own_start)
        statements_before = pg_statements()
        cpu_before = sum(proc_cpu_seconds(s.pid) for s in servers)
        started = time.perf_counter()
        spies: list[subprocess.Popen[bytes]] = []
        on_connected = None
        if os.environ.get("BENCH_PROFILE") and not index:
            on_connected = functools.partial(start_profiler, spies, servers[0].pid)
        asyncio.run(app_round(urls, sessions, prompt, result, on_connected))
        for spy in spies:
            spy.wait()
        result.wall_seconds += time.perf_counter() - started
        result.cpu_seconds += sum(proc_cpu_seconds(s.pid) for s in servers) - cpu_before
        time.sleep(1.5)  # let PostgreSQL publish its statistics
        statements_after = pg_statements()
        if statements_before is not None and statements_after is not None:
            result.statements = (result.statements or 0) + statements_after - statements_before
    if result.statements is not None:
        result.statements_per_reply = result.statements / (count * rounds)
    result.rounds = rounds
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="1,50,200")
    parser.add_argument("--tps", type=float, default=50.0, help="simulator tokens per second")
    parser.add_argument("--tokens", type=int, default=100, help="tokens per answer")
    parser.add_argument("--processes", type=int, default=1, help="daphne processes")
    parser.add_argument(
        "--samples", type=int, default=20, help="first tokens per N: rounds of N until there"
    )
    parser.add_argument("--rounds", type=int, default=3, help="at least this many rounds per N")
    parser.add_argument("--write", default="", help="append the results to this markdown file")
    args = parser.parse_args()
    counts = [int(n) for n in args.clients.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-" + uuid.uuid4().hex),
        "CHAT_MAX_CONCURRENT_REPLIES": "1000",
        "CHAT_MESSAGES_PER_MINUTE": "1000",
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
    call_command("collectstatic", "--noinput", verbosity=0)
    from conversations.starter import ensure_starter_personas

    ensure_starter_personas()

    sim_port = free_port()
    simulator = start_simulator(sim_port, args.tps, env)
    base_url = f"http://127.0.0.1:{sim_port}/v1"
    app_env = {**env, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "bench"}
    servers, urls = [], []
    for _ in range(args.processes):
        port = free_port()
        servers.append(start_daphne(port, app_env))
        urls.append(f"http://127.0.0.1:{port}")
    prompt = f"Benchmark question [[sim:tokens={args.tokens}]]"
    results: list[RoundResult] = []
    try:
        wait_for(f"{base_url}/models")
        for url in urls:
            wait_for(f"{url}/accounts/login/")
        # A warm server: the first request of a process imports and connects what it needs.
        for _ in range(3):
            asyncio.run(app_round(urls, make_sessions(len(urls)), prompt, RoundResult(0)))
        for count in counts:
            result = measure(count, args.samples, args.rounds, servers, urls, base_url, prompt)
            results.append(result)
            print(format_row(result), flush=True)
        peak = sum(proc_peak_rss_mb(s.pid) for s in servers)
    finally:
        for process in [*servers, simulator]:
            process.terminate()
        for process in [*servers, simulator]:
            process.wait(timeout=10)

    from django.db import connection

    report = format_report(results, args, peak, connection.vendor, bool(env.get("REDIS_URL")))
    print(report)
    if args.write:
        path = ROOT / args.write
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(report + "\n")


def ms(value: float) -> str:
    return f"{value * 1000:.1f}"


def format_row(result: RoundResult) -> str:
    added_p50 = percentile(result.app_ttft, 50) - percentile(result.direct_ttft, 50)
    added_p99 = percentile(result.app_ttft, 99) - percentile(result.direct_ttft, 99)
    added_p99_own = percentile(result.app_ttft, 99) - percentile(result.direct_ttft_own, 99)
    ratio = result.delivered / result.produced if result.produced else float("nan")
    cpu = result.cpu_seconds / (result.delivered / 1000) if result.delivered else float("nan")
    statements = (
        f"{result.statements_per_reply:.1f}" if result.statements_per_reply is not None else "n/a"
    )
    return (
        f"| {result.clients} | {result.rounds} | {ms(percentile(result.direct_ttft, 50))} | "
        f"{ms(percentile(result.app_ttft, 50))} | {ms(added_p50)} | {ms(added_p99)} | "
        f"{ratio:.3f} | {'yes' if result.in_order else 'NO'} | {cpu:.3f} | {statements} | "
        f"{result.wall_seconds / result.rounds:.1f} | {ms(added_p99_own)} |"
    )


def format_report(
    results: list[RoundResult], args: argparse.Namespace, peak: float, vendor: str, redis: bool
) -> str:
    header = (
        f"\n### {time.strftime('%Y-%m-%d')}: {args.processes} daphne process(es), {vendor}, "
        f"{'Redis' if redis else 'in-memory'} channel layer\n\n"
        f"Simulator at {args.tps:g} tokens/s, {args.tokens} tokens per answer; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
        f"Peak memory of the app processes: {peak:.0f} MB.\n\n"
        "| clients | rounds | direct TTFT p50 (ms) | app TTFT p50 (ms) | added p50 (ms) "
        "| added p99 (ms) | delivered / produced | in order | CPU s / 1k tokens "
        "| DB statements / reply | wall per round (s) "
        "| added p99, direct timed from each request's start (ms) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    return "\n".join([header, *(format_row(r) for r in results)])


if __name__ == "__main__":
    main()
