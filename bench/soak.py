"""Soak: replies through one app process at a steady rate for minutes; its memory over time.

Replies of 200 tokens at 50 tokens/s (`[[sim:tps=50,tokens=200]]`) arrive at random at
`--rate` a second (25 by default), each on a fresh conversation, for `--minutes` (10). The
resident memory of the daphne process (VmRSS in /proc/<pid>/status) is read every
`--sample-seconds` (60; 10 for runs of 5 minutes or less). After the warm-up (the first minute,
or the first fifth of a shorter run) it should stay flat: the report gives its growth per
1,000 replies served (a least-squares line through the samples after the warm-up, against the
replies ended by then), and the replies' first tokens and largest pauses over the run. The
allocators' free room fills for thousands of replies before it levels off (docs/benchmarks.md),
so the report also gives the growth over the last third of the run: memory that has levelled
off is flat there.

Under load the memory also holds what the replies in flight use and what the collector has not
freed yet. So the load comes in parts of `--sample-seconds`, each followed by `--pause` seconds
(10) with no reply in flight, at whose end the memory is read again: the growth of those idle
samples after the first part is what the replies served left behind.

Usage:  python bench/soak.py [--minutes 10] [--rate 25] [--json out.json]
With DATABASE_URL on PostgreSQL and REDIS_URL set, it measures that stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clients import Timing, make_conversations, make_users
from load import app_load, poisson_arrivals, summary
from processes import (
    OtherWork,
    bench_environment,
    free_port,
    machine,
    stack_name,
    start_app,
    start_simulator,
    status_mb,
    stop,
    wait_for,
)

USERS = 200
# Growth per 1,000 replies under which memory counts as flat: a tenth of what a leak of
# 2.4 KB a reply (the figure that asked for this benchmark) would show.
FLAT_MB_PER_1000 = 0.25


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    if len(points) < 2:
        return float("nan")
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if not spread:
        return float("nan")
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


async def soak(
    app: Any,
    sessions: list[tuple[str, str]],
    arrivals: list[float],
    prompt: str,
    every: float,
    pause: float,
) -> tuple[list[Timing], list[dict[str, float]]]:
    """Run the load while sampling the process's memory every `every` seconds.

    With `pause`, the load comes in parts of `every` seconds, each followed by `pause` seconds
    with no reply in flight, at whose end the memory is sampled again (`idle`): what the
    replies served so far left behind, without what the ones in flight hold."""
    ended = 0
    started = time.perf_counter()
    samples: list[dict[str, float]] = []

    def count(_timing: Timing) -> None:
        nonlocal ended
        ended += 1

    def sample(idle: bool = False) -> None:
        samples.append(
            {
                "seconds": time.perf_counter() - started,
                "replies": ended,
                "rss_mb": status_mb(app.pids[0], "VmRSS"),
                # Of it: the heap and other private memory, and the mapped files (the code and
                # its libraries, SQLite's shared WAL index): only the first is what replies
                # can leave behind.
                "anon_mb": status_mb(app.pids[0], "RssAnon"),
                "file_mb": status_mb(app.pids[0], "RssFile"),
                "idle": idle,
            }
        )

    async def sampler() -> None:
        while True:
            await asyncio.sleep(every)
            sample()

    parts = [arrivals]
    if pause and arrivals:
        parts = [
            [at - start for at in arrivals if start <= at < start + every]
            for start in range(0, math.ceil(arrivals[-1] / every) * int(every), int(every))
        ]
    timings: list[Timing] = []
    done = 0
    sample()
    for part in parts:
        task = asyncio.create_task(sampler())
        try:
            load = await app_load(
                app, sessions[done : done + len(part)], part, prompt, on_reply=count
            )
        finally:
            task.cancel()
        done += len(part)
        timings.extend(load.timings)
        if pause:
            await asyncio.sleep(pause)
            sample(idle=True)
    if not pause:
        sample()
    return timings, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=25, help="replies a second, at random")
    parser.add_argument("--sample-seconds", type=float, default=0, help="60, or 10 if short")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--tps", type=float, default=50)
    parser.add_argument("--env", action="append", default=[], help="VAR=VALUE for the app process")
    parser.add_argument(
        "--pause", type=float, default=10, help="seconds idle after each part of the load (0: none)"
    )
    parser.add_argument("--json", default="", help="write the samples to this JSON file")
    args = parser.parse_args()
    seconds = args.minutes * 60
    every = args.sample_seconds or (10 if args.minutes <= 5 else 60)
    warmup = min(60.0, seconds / 5)
    changed = dict(item.split("=", 1) for item in args.env)

    env = bench_environment("chat-soak-", 1)
    sim_port = free_port()
    simulator = start_simulator(sim_port, args.tps, env)
    base_url = f"http://127.0.0.1:{sim_port}/v1"
    prompt = f"Soak question [[sim:tps={args.tps:g},tokens={args.tokens}]]"
    arrivals = poisson_arrivals(args.rate, seconds, seed=25)
    sessions = make_conversations(make_users(USERS), len(arrivals))
    app = start_app(1, {**env, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "bench", **changed})
    try:
        wait_for(f"{base_url}/models")
        others = OtherWork([*app.pids, simulator.pid])
        timings, samples = asyncio.run(soak(app, sessions, arrivals, prompt, every, args.pause))
        other_work = others.cores()
        peak = app.peak_rss_mb()
    finally:
        app.stop()
        stop([simulator])

    loaded = [s for s in samples if not s["idle"]]
    after = [s for s in loaded if s["seconds"] >= warmup]
    first = after[0] if after else loaded[0]
    last = loaded[-1]
    idle = [s for s in samples if s["idle"]]
    served = last["replies"] - first["replies"]
    per_1000 = slope([(s["replies"] / 1000, s["rss_mb"]) for s in after])
    private_per_1000 = slope([(s["replies"] / 1000, s["anon_mb"]) for s in after])
    # Idle, after the first part (the warm-up): what the replies left behind.
    idle_per_1000 = slope([(s["replies"] / 1000, s["anon_mb"]) for s in idle[1:]])
    # Whether it has levelled off: the samples of the run's last third.
    late = [s for s in loaded if s["seconds"] >= last["seconds"] * 2 / 3]
    late_per_1000 = slope([(s["replies"] / 1000, s["rss_mb"]) for s in late])
    figures = summary(timings)
    result = {
        "stack": stack_name(env, 1),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "env": changed,
        "minutes": args.minutes,
        "rate": args.rate,
        "warmup_seconds": warmup,
        "replies": len(timings),
        "failed": figures["failed"],
        "errors": figures["errors"],
        "rss_after_warmup_mb": first["rss_mb"],
        "rss_end_mb": last["rss_mb"],
        "peak_rss_mb": peak,
        "replies_after_warmup": served,
        "growth_mb": last["rss_mb"] - first["rss_mb"],
        "growth_mb_per_1000_replies": per_1000,
        "private_growth_mb_per_1000_replies": private_per_1000,
        "idle_private_growth_mb_per_1000_replies": idle_per_1000,
        "pause_seconds": args.pause,
        "flat": per_1000 <= FLAT_MB_PER_1000,
        "last_third_growth_mb_per_1000_replies": late_per_1000,
        "last_third_replies": last["replies"] - late[0]["replies"],
        "levelled_off": late_per_1000 <= FLAT_MB_PER_1000,
        "ttft_p99": figures["ttft_p99"],
        "largest_gap_p99": figures["largest_gap_p99"],
        "other_work_cores": other_work,
        "samples": samples,
    }
    print(format_report(result, every))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


def format_report(r: dict[str, Any], every: float) -> str:
    settings = ", ".join(f"`{k}={v}`" for k, v in r["env"].items()) or "default settings"
    minute_rows = [
        f"| {s['seconds'] / 60:.1f} | {'idle' if s['idle'] else 'load'} | {s['replies']} "
        f"| {s['rss_mb']:.1f} | {s['anon_mb']:.1f} | {s['file_mb']:.1f} |"
        for s in r["samples"]
    ]
    idle = r["idle_private_growth_mb_per_1000_replies"]
    return "\n".join(
        [
            f"\n### {r['date']}: soak, {r['stack']}, {settings}\n",
            f"{r['rate']:g} replies a second at random for {r['minutes']:g} minutes; "
            f"{r['machine']}; other work kept {r['other_work_cores']:.2f} cores busy. Memory "
            f"sampled every {every:g} s under load, and after each {every:g} s of load at the end "
            f"of a {r['pause_seconds']:g} s pause with no reply in flight (idle); warm-up "
            f"{r['warmup_seconds']:g} s.\n",
            "| minutes | sample | replies ended | resident memory (MB) | of it private "
            "| of it files |",
            "| --- | --- | --- | --- | --- | --- |",
            *minute_rows,
            "",
            f"{r['replies']} replies, {r['failed']} failed; first token p99 "
            f"{r['ttft_p99']:.0f} ms, largest pause p99 {r['largest_gap_p99']:.0f} ms. "
            f"Resident memory {r['rss_after_warmup_mb']:.1f} MB after the warm-up, "
            f"{r['rss_end_mb']:.1f} MB at the end ({r['growth_mb']:+.1f} MB over "
            f"{r['replies_after_warmup']} replies): {r['growth_mb_per_1000_replies']:+.2f} MB "
            f"per 1,000 replies ({r['private_growth_mb_per_1000_replies']:+.2f} MB of it "
            f"private), {'flat' if r['flat'] else 'GROWING'} "
            f"(flat: at most {FLAT_MB_PER_1000} MB per 1,000). Idle, after the first part: "
            f"{idle:+.2f} MB private per 1,000 replies. Over the last third of the run "
            f"({r['last_third_replies']} replies): "
            f"{r['last_third_growth_mb_per_1000_replies']:+.2f} MB per 1,000 replies, "
            f"{'levelled off' if r['levelled_off'] else 'STILL GROWING'}.",
        ]
    )


if __name__ == "__main__":
    main()
