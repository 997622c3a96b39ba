"""Streaming benchmark: N logged-in WebSocket clients each send a message at once.

The simulator runs in its own process at a fixed pace; the app runs as a daphne process (or
several) pointed at it. For each N the benchmark measures, in the same run:

- time to first token through the app, and through a direct `AsyncOpenAI` stream of the same
  request (the default persona's) from the same simulator at the same concurrency; the
  difference is what the app adds (p50, p99);
- the whole reply: when its last token reaches the socket, over when the direct stream's last
  token arrives (p50, p99); how long after its last token `reply.ended` comes; the longest
  wait between two pieces of a reply's text;
- tokens delivered over tokens produced, and whether every delta arrived in order;
- server CPU seconds per 1,000 tokens and peak resident memory of the app processes;
- the cores the rest of the machine kept busy meanwhile (PostgreSQL and Redis among them);
- database transactions and rows written per reply (PostgreSQL only, from pg_stat_database, at
  the largest N: a round of its own per variant, alone on the database).

Variants (`--variant NAME:VAR=VALUE,...`, repeatable) run the app again with settings changed
(a mechanism switched off, a limit raised), each in processes of its own started side by side;
every round measures the direct stream once and then each variant in turn, so they share the
run's conditions. `bench/ablation.py` runs the standard ones on every stack.

Usage:  python bench/streams.py [--clients 1,50,200,200:20] [--tps 50] [--tokens 100]
        [--processes 1] [--rounds 3] [--samples 20] [--variant off:CHAT_GROUP_COMMIT=0]
        [--json results.json] [--write docs/benchmarks.md]
`200:20` is N = 200 with 20-token prompts (`[[sim:tokens=20]]`). With DATABASE_URL on
PostgreSQL and REDIS_URL set, it measures that stack; otherwise SQLite and the in-memory layer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clients import (
    Timing,
    direct_client,
    direct_request,
    direct_stream,
    make_sessions,
    open_socket,
    send_and_read,
)
from processes import (
    ROOT,
    App,
    OtherWork,
    bench_environment,
    free_port,
    machine,
    percentile,
    stack_name,
    start_app,
    start_simulator,
    stop,
    wait_for,
)

# The targets, as the benchmark measures them (docs/benchmarks.md).
ADDED_P50_AT_1_MS = 10
ADDED_P50_AT_200_MS = 150
ADDED_P99_AT_200_MS = 400
LAST_TOKEN_RATIO = 1.2


@dataclass(frozen=True)
class Shape:
    clients: int
    tokens: int

    @classmethod
    def parse(cls, text: str, tokens: int) -> Shape:
        clients, _, asked = text.partition(":")
        return cls(int(clients), int(asked) if asked else tokens)

    @property
    def prompt(self) -> str:
        return f"Benchmark question [[sim:tokens={self.tokens}]]"

    @property
    def label(self) -> str:
        return f"{self.clients}" if self.tokens == 100 else f"{self.clients} ({self.tokens} tok.)"


@dataclass(frozen=True, eq=False)
class Variant:
    name: str
    env: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Variant:
        name, _, settings = text.partition(":")
        pairs = [item.split("=", 1) for item in settings.split(",") if item]
        return cls(name, {key: value for key, value in pairs})

    def setting(self, name: str) -> float:
        from django.conf import settings

        return float(self.env.get(name, getattr(settings, name)))

    def delta_interval(self, replies: int) -> float:
        """`replies.delta_interval()` with this many replies streaming in one process."""
        return max(
            self.setting("CHAT_DELTA_SECONDS"), replies / self.setting("CHAT_DELTAS_PER_SECOND")
        )


@dataclass
class Result:
    """One variant at one shape, round by round: each round's app burst beside the direct
    burst of the same round."""

    variant: str
    clients: int
    tokens: int
    processes: int
    direct: list[list[Timing]] = field(default_factory=list)
    app: list[list[Timing]] = field(default_factory=list)
    cpu_seconds: float = 0.0
    transactions: int | None = None
    rows_written: int | None = None
    wall_seconds: float = 0.0
    delta_interval: float = 0.0
    other_work: float = float("nan")  # cores the rest of the machine kept busy meanwhile

    @property
    def rounds(self) -> int:
        return len(self.app)

    def figures(self) -> dict[str, Any]:
        """What the tables show, in ms where a time.

        The app against the direct stream is taken round by round (a round's p50 and p99 of
        the app's first tokens minus those of the direct burst measured just before it), then
        the median over the rounds: on a machine shared with other work, one slow moment moves
        one round, not the figure. `worst` is the worst round's.
        """
        replies = [t for timings in self.app for t in timings]
        done = [t for t in replies if t.ok]

        def p(timings: list[Timing], name: str, q: float) -> float:
            return percentile([getattr(t, name) for t in timings if t.ok], q)

        def by_round(name: str, q: float, ratio: bool = False) -> list[float]:
            values = []
            for app, direct in zip(self.app, self.direct, strict=True):
                mine, reference = p(app, name, q), p(direct, name, q)
                values.append(mine / reference if ratio else 1000 * (mine - reference))
            return values

        produced = sum(t.produced for t in replies)
        delivered = sum(t.delivered for t in replies)
        direct = [t for timings in self.direct for t in timings]
        return {
            "variant": self.variant,
            "clients": self.clients,
            "tokens": self.tokens,
            "processes": self.processes,
            "rounds": self.rounds,
            "replies": len(replies),
            "failed": len(replies) - len(done),
            "tokens_per_reply": (
                sum(t.produced for t in done) / len(done) if done else float("nan")
            ),
            "direct_ttft_p50": 1000 * p(direct, "first", 50),
            "app_ttft_p50": 1000 * p(done, "first", 50),
            "direct_last_p50": 1000 * p(direct, "last", 50),
            "app_last_p50": 1000 * p(done, "last", 50),
            "added_p50": statistics.median(by_round("first", 50)),
            "added_p99": statistics.median(by_round("first", 99)),
            "added_p99_worst": max(by_round("first", 99)),
            "last_ratio_p50": statistics.median(by_round("last", 50, ratio=True)),
            "last_ratio_p99": statistics.median(by_round("last", 99, ratio=True)),
            "last_ratio_p99_worst": max(by_round("last", 99, ratio=True)),
            "ended_lag_p50": 1000 * percentile([t.ended - t.last for t in done], 50),
            "ended_lag_p99": 1000 * percentile([t.ended - t.last for t in done], 99),
            "largest_gap_p99": 1000 * p(done, "largest_gap", 99),
            "direct_largest_gap_p99": 1000 * p(direct, "largest_gap", 99),
            "delta_interval": 1000 * self.delta_interval,
            "delivered_ratio": delivered / produced if produced else float("nan"),
            "in_order": all(t.in_order for t in replies),
            "cpu_per_1k_tokens": self.cpu_seconds / (delivered / 1000) if delivered else None,
            # From a round of its own (`count_writes`), at the largest N on PostgreSQL only.
            "transactions_per_reply": (
                self.transactions / self.clients if self.transactions is not None else None
            ),
            "rows_written_per_reply": (
                self.rows_written / self.clients if self.rows_written is not None else None
            ),
            "wall_per_round": self.wall_seconds / self.rounds if self.rounds else float("nan"),
            "other_work_cores": self.other_work,
        }


async def direct_round(base_url: str, clients: int, request: dict[str, Any]) -> list[Timing]:
    """The same request straight from the simulator, `clients` at once, with a plain
    `AsyncOpenAI` client (the SDK's defaults) read as the app reads a stream: what differs from
    the app round is what the app does around the model's stream.

    Every request's clock starts as the burst is asked for, as every socket's does in the app
    round: the last to be sent waited for the others to go first.
    """
    client = direct_client(base_url)
    try:
        await direct_stream(client, request, time.perf_counter())  # warm: connected, SDK loaded
        started = time.perf_counter()
        return list(
            await asyncio.gather(*(direct_stream(client, request, started) for _ in range(clients)))
        )
    finally:
        await client.close()


async def app_round(
    app: App,
    sessions: list[tuple[str, str]],
    prompt: str,
    on_connected: Callable[[], None] | None = None,
) -> list[Timing]:
    """Every socket connects, then all send at once; `on_connected` runs in between. A socket
    the server did not open (daphne drops one its app has not accepted within 5 s) is a failed
    reply."""
    opened = await asyncio.gather(
        *(open_socket(app.url(i), cookie, conv) for i, (cookie, conv) in enumerate(sessions)),
        return_exceptions=True,
    )
    sockets = [s for s in opened if not isinstance(s, BaseException)]
    failed = [Timing(error=f"connect: {s!r}") for s in opened if isinstance(s, BaseException)]
    try:
        if on_connected is not None:
            on_connected()
            await asyncio.sleep(PROFILER_ATTACH_SECONDS)
        started = time.perf_counter()  # every first token is timed from the burst's start
        return [
            *await asyncio.gather(*(send_and_read(s, prompt, started) for s in sockets)),
            *failed,
        ]
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets))


def pg_counters() -> tuple[int, int] | None:
    """(transactions, rows inserted + updated + deleted) of the benchmark's database so far."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted "
            "FROM pg_stat_database WHERE datname = %s",
            [connection.settings_dict["NAME"]],
        )
        transactions, rows = cursor.fetchone()
        return int(transactions), int(rows)


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


def app_burst(app: App, result: Result, prompt: str, profile: bool) -> None:
    """One round of the app: N sockets, N messages at once; its CPU."""
    sessions = make_sessions(result.clients)
    cpu_before = app.cpu_seconds()
    spies: list[subprocess.Popen[bytes]] = []
    on_connected = (lambda: spies.append(profiler(app.pids[0]))) if profile else None
    started = time.perf_counter()
    result.app.append(asyncio.run(app_round(app, sessions, prompt, on_connected)))
    for spy in spies:
        spy.wait()
    result.wall_seconds += time.perf_counter() - started
    result.cpu_seconds += app.cpu_seconds() - cpu_before


# An idle PostgreSQL backend publishes its counts within this long (PGSTAT_IDLE_INTERVAL, 10 s).
STATS_PUBLISHED_SECONDS = 11.0


def count_writes(app: App, result: Result, prompt: str) -> None:
    """A round of its own, alone on the database, for its transactions and rows written.

    PostgreSQL counts per database, and a backend publishes its counts up to 10 s after its
    work: the round is preceded and followed by that wait, so neither the sessions made for it
    nor another variant's round are counted with it.
    """
    sessions = make_sessions(result.clients)
    time.sleep(STATS_PUBLISHED_SECONDS)
    before = pg_counters()
    asyncio.run(app_round(app, sessions, prompt))
    time.sleep(STATS_PUBLISHED_SECONDS)
    after = pg_counters()
    if before is not None and after is not None:
        result.transactions = after[0] - before[0]
        result.rows_written = after[1] - before[1]


def measure(
    shape: Shape,
    samples: int,
    least_rounds: int,
    apps: dict[Variant, App],
    base_url: str,
    processes: int,
    simulator_pid: int,
) -> list[Result]:
    """Rounds of `shape.clients` at once: enough for `samples` first tokens, and at least
    `least_rounds` (one round of N is one burst: its p99 is that of a single moment). Each
    round streams the direct burst once, then every variant's, in an order that turns."""
    results = {
        variant: Result(
            variant.name,
            shape.clients,
            shape.tokens,
            processes,
            delta_interval=variant.delta_interval(-(-shape.clients // processes)),
        )
        for variant in apps
    }
    request = direct_request(shape.prompt)
    rounds = max(least_rounds, -(-samples // shape.clients))
    variants = list(apps)
    others = OtherWork([pid for app in apps.values() for pid in app.pids] + [simulator_pid])
    for index in range(rounds):
        direct = asyncio.run(direct_round(base_url, shape.clients, request))
        turn = index % len(variants)
        for variant in variants[turn:] + variants[:turn]:
            profile = bool(os.environ.get("BENCH_PROFILE")) and not index and variant is variants[0]
            results[variant].direct.append(direct)
            app_burst(apps[variant], results[variant], shape.prompt, profile)
    for result in results.values():
        result.other_work = others.cores()
    return list(results.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="1,50,200,200:20")
    parser.add_argument("--tps", type=float, default=50.0, help="simulator tokens per second")
    parser.add_argument("--tokens", type=int, default=100, help="tokens per answer (at least)")
    parser.add_argument("--processes", type=int, default=1, help="daphne processes")
    parser.add_argument(
        "--samples", type=int, default=20, help="first tokens per N: rounds of N until there"
    )
    parser.add_argument("--rounds", type=int, default=3, help="at least this many rounds per N")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:VAR=VALUE,...: the app again with these settings, beside the default",
    )
    parser.add_argument("--json", default="", help="write every figure to this JSON file")
    parser.add_argument("--write", default="", help="append the results to this markdown file")
    args = parser.parse_args()
    shapes = [Shape.parse(item, args.tokens) for item in args.clients.split(",")]
    variants = [Variant("default", {}), *(Variant.parse(v) for v in args.variant)]

    env = bench_environment("chat-bench-", args.processes)
    sim_port = free_port()
    simulator = start_simulator(sim_port, args.tps, env)
    base_url = f"http://127.0.0.1:{sim_port}/v1"
    app_env = {**env, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "bench"}
    apps: dict[Variant, App] = {}
    results: list[Result] = []
    try:
        wait_for(f"{base_url}/models")
        for variant in variants:
            apps[variant] = start_app(args.processes, {**app_env, **variant.env})
        # A warm server: the first request of a process imports and connects what it needs.
        for app in apps.values():
            for _ in range(3):
                asyncio.run(app_round(app, make_sessions(len(app.urls)), shapes[0].prompt))
        for shape in shapes:
            measured = measure(
                shape, args.samples, args.rounds, apps, base_url, args.processes, simulator.pid
            )
            results += measured
            if pg_counters() is not None and shape.clients == max(s.clients for s in shapes):
                for variant, result in zip(apps, measured, strict=True):
                    count_writes(apps[variant], result, shape.prompt)
            for result in measured:
                print(format_row(result.figures()), flush=True)
        peaks = {variant.name: app.peak_rss_mb() for variant, app in apps.items()}
    finally:
        for app in apps.values():
            app.stop()
        stop([simulator])

    stack = stack_name(env, args.processes)
    report = format_report([r.figures() for r in results], args, stack, peaks, variants)
    print(report)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "stack": stack,
                    "date": time.strftime("%Y-%m-%d"),
                    "machine": machine(),
                    "tps": args.tps,
                    "peak_rss_mb": peaks,
                    "variants": [asdict(v) for v in variants],
                    "results": [r.figures() for r in results],
                },
                indent=1,
            )
        )
    if args.write:
        with (ROOT / args.write).open("a", encoding="utf-8") as out:
            out.write(report + "\n")


def number(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


HEADER = (
    "| variant | N | tokens / reply | added TTFT p50 (ms) | added TTFT p99 (ms) "
    "| added p99, worst round (ms) | last token / direct end, p50 | p99 "
    "| `reply.ended` after last token, p50 / p99 (ms) | delta interval (ms) "
    "| largest pause p99 (ms) | delivered, in order | CPU s / 1k tokens "
    "| DB transactions / reply | rows written / reply | other work (cores) |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
    "| --- |"
)


def format_row(f: dict[str, Any]) -> str:
    delivered = f"{f['delivered_ratio']:.3f}, {'yes' if f['in_order'] else 'NO'}"
    if f["failed"]:
        delivered += f" ({f['failed']} failed)"
    return (
        f"| {f['variant']} | {f['clients']} | {f['tokens_per_reply']:.0f} "
        f"| {f['added_p50']:.1f} | {f['added_p99']:.1f} | {f['added_p99_worst']:.0f} "
        f"| {f['last_ratio_p50']:.2f} | {f['last_ratio_p99']:.2f} "
        f"| {f['ended_lag_p50']:.0f} / {f['ended_lag_p99']:.0f} | {f['delta_interval']:.0f} "
        f"| {f['largest_gap_p99']:.0f} | {delivered} | {number(f['cpu_per_1k_tokens'], 3)} "
        f"| {number(f['transactions_per_reply'], 1)} | {number(f['rows_written_per_reply'], 1)} "
        f"| {f.get('other_work_cores', float('nan')):.2f} |"
    )


def format_report(
    figures: list[dict[str, Any]],
    args: argparse.Namespace,
    stack: str,
    peaks: dict[str, float],
    variants: list[Variant],
) -> str:
    lines = [
        f"\n### {time.strftime('%Y-%m-%d')}: {stack}\n",
        f"Simulator at {args.tps:g} tokens/s; {machine()}. "
        f"Peak memory of the app processes: "
        + ", ".join(f"{name} {mb:.0f} MB" for name, mb in peaks.items())
        + ".",
    ]
    changed = [v for v in variants if v.env]
    if changed:
        lines.append(
            "Variants: "
            + "; ".join(
                f"{v.name}: " + ", ".join(f"`{k}={val}`" for k, val in v.env.items())
                for v in changed
            )
            + "."
        )
    lines += ["", HEADER, *(format_row(f) for f in figures)]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
