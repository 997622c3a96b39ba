"""Capacity: the most replies a second the app holds, arriving at random, within two limits.

Each reply is 200 tokens at 50 tokens/s (`[[sim:tps=50,tokens=200]]`, about 4 s), sent on a
fresh conversation at a random moment (a Poisson process at the rate tried). At each rate, for
`--warmup` + `--seconds` seconds, the benchmark measures the replies that arrive after the
warm-up:

- the added time to first token, p99: the app's p99 minus the p99 of the same request streamed
  straight from the simulator at the same moments (the direct run, just before);
- the largest pause inside a reply: the longest time between two pieces of its text reaching
  the socket, p99 over the replies.

A rate holds when every reply completes, in order, with the added p99 under `--ttft-ms` (100)
and the pause p99 under `--pause-ms` (250). The search starts at `--start` replies a second,
doubles while the rate holds (halves while it does not), then halves the interval between the
last rate held and the first not held `--steps` times. It runs for 1, 2 and 4 processes (more
than one needs PostgreSQL and Redis: DATABASE_URL, REDIS_URL), each clients' socket on the
processes in turn.

Usage:  python bench/capacity.py [--processes 1,2,4] [--start 25] [--seconds 20] [--warmup 5]
        [--steps 2] [--also 25,50] [--rates 10,20] [--env CHAT_DELTAS_PER_SECOND=4000]
        [--json out.json]
`--also` rates are tried for every process count besides the search (25 and 50 a second: the
rates the pause is compared at); `--rates` tries exactly those rates instead of searching. Each
process count's search starts from the rate the one before held.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clients import direct_request, make_conversations, make_users
from load import app_load, direct_load, poisson_arrivals, summary
from processes import (
    App,
    OtherWork,
    bench_environment,
    free_port,
    machine,
    stack_name,
    start_app,
    start_simulator,
    stop,
    wait_for,
)

USERS = 200  # the arrivals' conversations belong to these in turn


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def trial(
    app: App,
    base_url: str,
    rate: float,
    args: argparse.Namespace,
    users: list[Any],
    simulator_pid: int,
    show: bool = True,
) -> dict[str, Any]:
    """One rate: the direct run, then the app's, on the same moments."""
    prompt = f"Capacity question [[sim:tps={args.tps:g},tokens={args.tokens}]]"
    arrivals = poisson_arrivals(rate, args.warmup + args.seconds, seed=int(rate * 1000))
    direct = asyncio.run(direct_load(base_url, direct_request(prompt), arrivals))
    sessions = make_conversations(users, len(arrivals))
    time.sleep(1.0)
    cpu_before, own_before = app.cpu_seconds(), own_cpu_seconds()
    others = OtherWork([*app.pids, simulator_pid])
    load = asyncio.run(app_load(app, sessions, arrivals, prompt))
    other_work = others.cores()
    app_cpu, own_cpu = app.cpu_seconds() - cpu_before, own_cpu_seconds() - own_before
    mine, reference = summary(load.after(args.warmup)), summary(direct.after(args.warmup))
    added = mine["ttft_p99"] - reference["ttft_p99"]
    held = (
        not mine["failed"]
        and mine["in_order"]
        and mine["delivered_ratio"] > 0.999
        and added < args.ttft_ms
        and mine["largest_gap_p99"] < args.pause_ms
    )
    row = {
        "processes": len(app.urls),
        "rate": rate,
        "replies": mine["replies"],
        "failed": mine["failed"],
        "most_in_flight": load.most_in_flight,
        "direct_ttft_p99": reference["ttft_p99"],
        "app_ttft_p99": mine["ttft_p99"],
        "added_ttft_p99": added,
        "largest_gap_p50": mine["largest_gap_p50"],
        "largest_gap_p99": mine["largest_gap_p99"],
        "direct_largest_gap_p99": reference["largest_gap_p99"],
        "in_order": mine["in_order"],
        "delivered_ratio": mine["delivered_ratio"],
        "app_cpu_share": app_cpu / load.seconds,
        "generator_cpu_share": own_cpu / load.seconds,
        "other_work_cores": other_work,
        "errors": mine["errors"],
        "held": held,
    }
    if show:
        print(format_row(row), flush=True)
    return row


def search(try_rate: Any, start: float, steps: int, low: float, high: float) -> float | None:
    """The highest rate held: double (or halve) from `start` to bracket it, then bisect."""
    held: float | None = None
    failed: float | None = None
    rate = start
    while low <= rate <= high:
        if try_rate(rate):
            held = rate
            if failed is not None:
                break
            rate = round(rate * 2)
        else:
            failed = rate
            if held is not None:
                break
            rate = round(rate / 2)
    for _ in range(steps):
        if held is None or failed is None or failed - held <= 1:
            break
        middle = round((held + failed) / 2)
        if try_rate(middle):
            held = middle
        else:
            failed = middle
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--start", type=float, default=25, help="first rate tried (replies/s)")
    parser.add_argument("--rates", default="", help="try exactly these rates, no search")
    parser.add_argument(
        "--also", default="25,50", help="rates tried for every process count, besides the search"
    )
    parser.add_argument("--steps", type=int, default=2, help="halvings of the last interval")
    parser.add_argument("--low", type=float, default=2, help="lowest rate tried")
    parser.add_argument("--high", type=float, default=400, help="highest rate tried")
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds per rate")
    parser.add_argument("--warmup", type=float, default=5, help="seconds before measuring")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per reply")
    parser.add_argument("--tps", type=float, default=50, help="tokens per second of a reply")
    parser.add_argument("--ttft-ms", type=float, default=100, help="limit: added TTFT p99")
    parser.add_argument("--pause-ms", type=float, default=250, help="limit: largest pause p99")
    parser.add_argument(
        "--env", action="append", default=[], help="VAR=VALUE for the app processes"
    )
    parser.add_argument("--json", default="", help="write every trial to this JSON file")
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]
    changed = dict(item.split("=", 1) for item in args.env)

    env = bench_environment("chat-capacity-", max(counts))
    sim_port = free_port()
    simulator = start_simulator(sim_port, args.tps, env)
    base_url = f"http://127.0.0.1:{sim_port}/v1"
    app_env = {**env, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "bench", **changed}
    users = make_users(USERS)
    rows: list[dict[str, Any]] = []
    best: dict[int, float | None] = {}
    print(HEADER, flush=True)
    try:
        wait_for(f"{base_url}/models")
        start = args.start
        for count in counts:
            app = start_app(count, app_env)
            try:
                # Warm: every process's first replies import and connect what they need.
                trial_args = argparse.Namespace(**{**vars(args), "seconds": 3, "warmup": 0})
                trial(app, base_url, 2 * count, trial_args, users, simulator.pid, show=False)

                tried: dict[float, bool] = {}

                def try_rate(rate: float, app: App = app, tried: dict[float, bool] = tried) -> bool:
                    if rate not in tried:
                        rows.append(trial(app, base_url, rate, args, users, simulator.pid))
                        tried[rate] = bool(rows[-1]["held"])
                    return tried[rate]

                for rate in filter(None, args.also.split(",")):
                    try_rate(float(rate))
                if args.rates:
                    for rate in args.rates.split(","):
                        try_rate(float(rate))
                    best[count] = max((r for r, held in tried.items() if held), default=None)
                else:
                    best[count] = search(try_rate, start, args.steps, args.low, args.high)
                    start = best[count] or start
            finally:
                app.stop()
    finally:
        stop([simulator])

    stack = stack_name(env, max(counts)).rsplit(",", 1)[0]
    report = format_report(rows, best, args, stack, changed)
    print(report)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "stack": stack,
                    "date": time.strftime("%Y-%m-%d"),
                    "machine": machine(),
                    "env": changed,
                    "seconds": args.seconds,
                    "warmup": args.warmup,
                    "best": best,
                    "trials": rows,
                },
                indent=1,
            )
        )


HEADER = (
    "| processes | replies / s | replies measured | most at once | added TTFT p99 (ms) "
    "| largest pause p50 / p99 (ms) | direct's largest pause p99 (ms) | app CPU (cores) "
    "| load generator CPU (cores) | other work (cores) | holds |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def format_row(r: dict[str, Any]) -> str:
    verdict = "yes" if r["held"] else "no"
    if r["failed"]:
        verdict += f" ({r['failed']} failed)"
    elif not r["in_order"] or r["delivered_ratio"] <= 0.999:
        verdict += " (tokens lost or out of order)"
    return (
        f"| {r['processes']} | {r['rate']:g} | {r['replies']} | {r['most_in_flight']} "
        f"| {r['added_ttft_p99']:.0f} | {r['largest_gap_p50']:.0f} / {r['largest_gap_p99']:.0f} "
        f"| {r['direct_largest_gap_p99']:.0f} | {r['app_cpu_share']:.2f} "
        f"| {r['generator_cpu_share']:.2f} | {r['other_work_cores']:.2f} | {verdict} |"
    )


def format_report(
    rows: list[dict[str, Any]],
    best: dict[int, float | None],
    args: argparse.Namespace,
    stack: str,
    changed: dict[str, str],
) -> str:
    settings = ", ".join(f"`{k}={v}`" for k, v in changed.items()) or "default settings"
    lines = [
        f"\n### {time.strftime('%Y-%m-%d')}: capacity, {stack}, {settings}\n",
        f"Replies of {args.tokens} tokens at {args.tps:g} tokens/s arriving at random; "
        f"{args.warmup:g} s of warm-up, then {args.seconds:g} s measured per rate; limits: "
        f"added TTFT p99 under {args.ttft_ms:g} ms, largest pause p99 under "
        f"{args.pause_ms:g} ms; {machine()}.\n",
        HEADER,
        *(format_row(r) for r in sorted(rows, key=lambda r: (r["processes"], r["rate"]))),
        "",
        "Highest rate held: "
        + "; ".join(
            f"{count} process{'es' if count > 1 else ''}: "
            + (f"{rate:g} replies/s" if rate else "none of the rates tried")
            for count, rate in best.items()
        )
        + ".",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
