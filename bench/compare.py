"""Compare benchmark: the wall time of a compare is that of its slowest reply, not the sum.

The simulator runs in its own process at a fixed pace. For 2, 3 and 4 columns (the starter
personas) the benchmark asks the same question twice in the app's own code:

- one after another: each persona's reply started by `replies.post(…)`
  and awaited before the next (what a loop over the personas would cost);
- as a compare: `compare.start_compare`, the function behind the Compare page, which starts all
  replies with `asyncio.gather` and lets them stream side by side.

It reports each way's wall time next to the slowest single reply and the sum of the replies
(each reply's own duration, stored start to end), median of `--repeat` rounds.

Usage:  python bench/compare.py [--tps 40] [--tokens 60] [--repeat 3] [--write docs/benchmarks.md]
With DATABASE_URL set it uses that database; otherwise a throwaway SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from processes import free_port, machine, start_simulator, wait_for


@dataclass
class Round:
    columns: int
    sequential_wall: float
    sequential_sum: float
    compare_wall: float
    compare_slowest: float
    compare_sum: float


async def one_after_another(user, targets, prompt) -> tuple[float, list[float]]:
    from channels.db import database_sync_to_async

    from conversations import replies, services

    started = time.perf_counter()
    durations = []
    for target in targets:
        conversation = await database_sync_to_async(services.start_conversation)(
            user=user, persona=target.persona
        )
        prepared = await replies.post(
            user=user,
            conversation_id=conversation.pk,
            content=prompt,
            client_id=uuid.uuid4().hex,
        )
        await replies.wait_for_replies()
        durations.append(await reply_seconds(prepared.reply.pk))
    return time.perf_counter() - started, durations


async def reply_seconds(reply_id: int) -> float:
    from channels.db import database_sync_to_async

    from conversations.models import Message, Status

    reply = await database_sync_to_async(Message.objects.get)(pk=reply_id)
    if reply.status != Status.COMPLETE:
        raise RuntimeError(f"reply {reply_id} ended {reply.status}: {reply.error}")
    return (reply.completed_at - reply.created_at).total_seconds()


async def as_compare(user, targets, prompt) -> tuple[float, list[float]]:
    from conversations import compare

    started = time.perf_counter()
    columns = await compare.start_compare(user=user, prompt=prompt, targets=targets)
    await compare.wait_for(columns)
    wall = time.perf_counter() - started
    return wall, [await reply_seconds(c.prepared.reply.pk) for c in columns]


async def measure(user, personas, prompt, counts, repeat) -> list[Round]:
    from conversations import compare

    # Warm up: the first call of a process opens its connections.
    await as_compare(user, [compare.Target(p) for p in personas[:2]], prompt)
    rounds = []
    for count in counts:
        targets = [compare.Target(p) for p in personas[:count]]
        samples = []
        for _ in range(repeat):
            seq_wall, seq_durations = await one_after_another(user, targets, prompt)
            cmp_wall, cmp_durations = await as_compare(user, targets, prompt)
            samples.append(
                Round(
                    count,
                    seq_wall,
                    sum(seq_durations),
                    cmp_wall,
                    max(cmp_durations),
                    sum(cmp_durations),
                )
            )
        rounds.append(
            Round(
                count,
                *(
                    statistics.median(getattr(s, name) for s in samples)
                    for name in (
                        "sequential_wall",
                        "sequential_sum",
                        "compare_wall",
                        "compare_slowest",
                        "compare_sum",
                    )
                ),
            )
        )
        print(row(rounds[-1]), flush=True)
    return rounds


HEADER = (
    "| columns | slowest reply (s) | sum of replies (s) | one after another, wall (s) "
    "| compare, wall (s) | compare wall / slowest reply |\n"
    "| --- | --- | --- | --- | --- | --- |"
)


def row(r: Round) -> str:
    return (
        f"| {r.columns} | {r.compare_slowest:.2f} | {r.compare_sum:.2f} | {r.sequential_wall:.2f} "
        f"| {r.compare_wall:.2f} | {r.compare_wall / r.compare_slowest:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tps", type=float, default=40.0, help="simulator tokens per second")
    parser.add_argument("--tokens", type=int, default=60, help="at least this many tokens")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per size (median)")
    parser.add_argument("--write", default="", help="append the results to this markdown file")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="chat-bench-compare-"))
    sim_port = free_port()
    base_url = f"http://127.0.0.1:{sim_port}/v1"
    env = {
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-" + uuid.uuid4().hex),
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "bench",
        "OPENAI_READ_TIMEOUT": "30",
        "CHAT_MAX_CONCURRENT_REPLIES": "1000",
        "CHAT_MESSAGES_PER_MINUTE": "1000",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"

    simulator = start_simulator(sim_port, args.tps, dict(os.environ))
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from conversations.models import Persona
        from conversations.starter import ensure_starter_personas

        call_command("migrate", verbosity=0)
        ensure_starter_personas()
        user, _ = get_user_model().objects.get_or_create(username="bench-compare")
        personas = list(Persona.objects.active().order_by("position")[:4])
        wait_for(f"{base_url}/models")
        prompt = f"What should I cook tonight? [[sim:tokens={args.tokens}]]"
        print(HEADER, flush=True)
        rounds = asyncio.run(measure(user, personas, prompt, [2, 3, 4], args.repeat))
        engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)

    if args.write:
        section = [
            "",
            f"### {date.today().isoformat()}: compare, {engine}",
            "",
            f"Simulator at {args.tps:g} tokens/s in its own process, at least {args.tokens} "
            f"tokens per answer (each persona answers at its own length); median of "
            f"{args.repeat} rounds; {machine()}.",
            "",
            HEADER,
            *(row(r) for r in rounds),
            "",
        ]
        with open(args.write, "a", encoding="utf-8") as out:
            out.write("\n".join(section))


if __name__ == "__main__":
    main()
