"""Ablation: every mechanism that is not design, switched off in turn, on every stack.

For each stack (SQLite + in-memory layer, one process; PostgreSQL + Redis with one process and
with two) it runs `bench/streams.py` once, with the default settings and each variant side by
side (processes of their own, every round measuring the direct stream and then each variant,
in turns), at N = 1, 50 and 200 and at N = 200 with 20-token replies. Then it says, per stack
and variant, which targets hold:

- added time to first token p50 at most 10 ms at N = 1;
- at N = 200, added p50 at most 150 ms and p99 at most 400 ms;
- every token delivered, in order, at every N;
- database transactions per reply bounded by time (PostgreSQL: the 2-second replies of N = 200
  take no more than a few, whatever their tokens);
- the whole reply at N = 200 (20-token prompts) at most 1.2 times later than the direct
  stream's end (p50 and p99), and `reply.ended` within one delta interval of the last token.

The variants: `CHAT_GROUP_COMMIT=0` (each message stored in its own trip and transaction);
`CHAT_GC_TUNING=0` (no gc.freeze and thresholds at import of chatsite/asgi.py), when the app
has that setting; `CHAT_LOCAL_LAYER=0` (channels' stock in-memory layer for one process, on
the SQLite stack: with Redis it changes nothing); `CHAT_DATABASE_THREADS=1` (the database work
of a PostgreSQL process in several threads side by side instead of one: on SQLite it changes
nothing); `CHAT_UVLOOP=0` (daphne on asyncio's own event loop instead of uvloop's, when the
app has that setting); `CHAT_DELTAS_PER_SECOND` at 500 (the earlier
cap) and at 4000, on either side of the default 2000 (the cap on a process's deltas a second,
which the last-token and the pause targets depend on).

Usage:  python bench/ablation.py [--stacks sqlite,pg1,pg2] [--samples 20] [--rounds 3]
        [--load pg2=earlier.json]
        [--database-url postgres://postgres@127.0.0.1:5432/chat_bench]
        [--redis-url redis://127.0.0.1:6379/5] [--json out.json] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from processes import ROOT, setting_exists
from streams import (
    ADDED_P50_AT_1_MS,
    ADDED_P50_AT_200_MS,
    ADDED_P99_AT_200_MS,
    LAST_TOKEN_RATIO,
)

STACKS = {
    "sqlite": (1, False),
    "pg1": (1, True),
    "pg2": (2, True),
}


def variants() -> list[str]:
    chosen = ["group-commit-off:CHAT_GROUP_COMMIT=0"]
    if setting_exists("CHAT_GC_TUNING"):
        chosen.append("gc-tuning-off:CHAT_GC_TUNING=0")
    else:
        print("The app has no CHAT_GC_TUNING setting yet: its row is skipped.", flush=True)
    if setting_exists("CHAT_LOCAL_LAYER"):
        chosen.append("stock-memory-layer:CHAT_LOCAL_LAYER=0")
    if setting_exists("CHAT_DATABASE_THREADS"):
        chosen.append("database-threads:CHAT_DATABASE_THREADS=1")
    if setting_exists("CHAT_UVLOOP"):
        chosen.append("asyncio-loop:CHAT_UVLOOP=0")
    chosen.append("deltas-500:CHAT_DELTAS_PER_SECOND=500")
    chosen.append("deltas-4000:CHAT_DELTAS_PER_SECOND=4000")
    return chosen


def run_stack(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    processes, postgres = STACKS[name]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    if postgres:
        env["DATABASE_URL"] = args.database_url
        env["REDIS_URL"] = args.redis_url
    command = [
        sys.executable,
        str(ROOT / "bench" / "streams.py"),
        "--clients",
        "1,50,200,200:20",
        "--processes",
        str(processes),
        "--samples",
        str(args.samples),
        "--rounds",
        str(args.rounds),
        "--json",
        str(out),
    ]
    for variant in variants():
        command += ["--variant", variant]
    run = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        if run.wait():
            sys.exit(f"The {name} run failed.")
    finally:
        if run.poll() is None:  # stopped: it stops the processes it started
            run.terminate()
            run.wait()
    return json.loads(out.read_text())


def mark(held: bool) -> str:
    return "met" if held else "**not met**"


def verdicts(run: dict[str, Any], variant: str) -> dict[str, str]:
    """The targets of one variant on one stack, each with its figure."""
    rows = {(r["clients"], r["tokens"]): r for r in run["results"] if r["variant"] == variant}
    one, burst = rows[(1, 100)], rows[(200, 100)]
    short = rows.get((200, 20), burst)
    ordered = all(
        r["in_order"] and r["delivered_ratio"] > 0.999 and not r["failed"] for r in rows.values()
    )
    transactions = burst["transactions_per_reply"]
    lag = short["ended_lag_p99"]
    return {
        "n1_p50": f"{one['added_p50']:.1f} ms, {mark(one['added_p50'] <= ADDED_P50_AT_1_MS)}",
        "n200_p50": (
            f"{burst['added_p50']:.0f} ms, {mark(burst['added_p50'] <= ADDED_P50_AT_200_MS)}"
        ),
        "n200_p99": (
            f"{burst['added_p99']:.0f} ms, {mark(burst['added_p99'] <= ADDED_P99_AT_200_MS)}"
        ),
        "order": mark(ordered),
        "transactions": (
            "n/a (SQLite)"
            if transactions is None
            else f"{transactions:.1f} for {burst['tokens_per_reply']:.0f} tokens"
        ),
        "last": (
            f"{short['last_ratio_p50']:.2f} / {short['last_ratio_p99']:.2f}, "
            + mark(max(short["last_ratio_p50"], short["last_ratio_p99"]) <= LAST_TOKEN_RATIO)
        ),
        "ended": (
            f"{lag:.0f} ms (interval {short['delta_interval']:.0f}), "
            + mark(lag <= short["delta_interval"])
        ),
    }


HEADER = (
    "| stack | variant | N = 1 added p50 ≤ 10 ms | N = 200 added p50 ≤ 150 ms "
    "| N = 200 added p99 ≤ 400 ms | every token, in order | DB transactions / reply, N = 200 "
    "| last token / direct end ≤ 1.2, p50 / p99 (N = 200, 20 tok.) "
    "| `reply.ended` after last token, p99 ≤ delta interval |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def table(runs: dict[str, dict[str, Any]]) -> str:
    lines = [HEADER]
    for run in runs.values():
        for variant in dict.fromkeys(r["variant"] for r in run["results"]):
            v = verdicts(run, variant)
            lines.append(
                f"| {run['stack']} | {variant} | {v['n1_p50']} | {v['n200_p50']} "
                f"| {v['n200_p99']} | {v['order']} | {v['transactions']} | {v['last']} "
                f"| {v['ended']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stacks", default="sqlite,pg1,pg2")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chat_bench"
        ),
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
    )
    parser.add_argument(
        "--load",
        action="append",
        default=[],
        help="STACK=PATH: a stack's figures from an earlier run (streams.py --json) instead",
    )
    parser.add_argument("--json", default="", help="write every run's figures to this file")
    parser.add_argument("--write", default="", help="append the table to this markdown file")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    workdir = Path(tempfile.mkdtemp(prefix="chat-ablation-"))
    runs = {}
    for item in args.load:
        name, _, path = item.partition("=")
        runs[name] = json.loads(Path(path).read_text())
    for name in filter(None, args.stacks.split(",")):
        runs[name] = run_stack(name, args, workdir / f"{name}.json")
    runs = {name: runs[name] for name in STACKS if name in runs}
    report = f"\n### {time.strftime('%Y-%m-%d')}: ablation\n\n" + table(runs)
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    if args.write:
        with (ROOT / args.write).open("a", encoding="utf-8") as out:
            out.write(report + "\n")


if __name__ == "__main__":
    main()
