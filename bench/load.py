"""Replies arriving at random at a steady rate, as a team's users send them (the capacity and
soak benchmarks): a Poisson process of arrivals, each a message on a fresh conversation.

Each arrival's socket is opened `LEAD_SECONDS` before its moment (a tab already open), and
every time of its reply is counted from that moment: a server too busy to accept the socket
in time makes the reply late, as it would for the user. The direct reference streams the same
request at the same moments straight from the simulator.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clients import Timing, direct_client, direct_stream, open_socket, send_and_read
from processes import App, percentile

LEAD_SECONDS = 0.5


def poisson_arrivals(rate: float, seconds: float, seed: int) -> list[float]:
    """Moments (seconds from the start) of arrivals at `rate` a second on average, at random."""
    rng = random.Random(seed)
    moments, now = [], 0.0
    while True:
        now += rng.expovariate(rate)
        if now >= seconds:
            return moments
        moments.append(now)


@dataclass
class Load:
    """Arrivals and what became of each."""

    arrivals: list[float]
    timings: list[Timing]
    most_in_flight: int
    seconds: float

    def after(self, warmup: float) -> list[Timing]:
        """The replies that arrived once the warm-up was over (the server at its steady load)."""
        return [t for at, t in zip(self.arrivals, self.timings, strict=True) if at >= warmup]


async def _schedule(
    arrivals: list[float], lead: float, start: Callable[[int, float], Any]
) -> tuple[list[Any], float]:
    """Start `start(i, moment)` for each arrival `lead` seconds before its moment; gather."""
    origin = time.perf_counter() + lead
    tasks = []
    for index, at in enumerate(arrivals):
        delay = origin + at - lead - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(start(index, origin + at)))
    results = await asyncio.gather(*tasks)
    return list(results), time.perf_counter() - origin


class InFlight:
    def __init__(self) -> None:
        self.now = self.most = 0

    def __enter__(self) -> None:
        self.now += 1
        self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        self.now -= 1


async def app_load(
    app: App,
    sessions: list[tuple[str, str]],
    arrivals: list[float],
    prompt: str,
    on_reply: Callable[[Timing], None] | None = None,
) -> Load:
    """Each arrival: its socket opened on its own conversation (the processes in turn), its
    message sent at its moment, its reply read to its end."""
    in_flight = InFlight()

    async def one(index: int, moment: float) -> Timing:
        cookie, conversation = sessions[index]
        try:
            socket = await open_socket(app.url(index), cookie, conversation)
        except Exception as exc:
            return Timing(error=f"connect: {exc!r}")
        try:
            delay = moment - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            with in_flight:
                timing = await send_and_read(socket, prompt, moment)
        except Exception as exc:
            timing = Timing(error=repr(exc))
        finally:
            await socket.close()
        if on_reply is not None:
            on_reply(timing)
        return timing

    timings, seconds = await _schedule(arrivals, LEAD_SECONDS, one)
    return Load(arrivals, timings, in_flight.most, seconds)


async def direct_load(base_url: str, request: dict[str, Any], arrivals: list[float]) -> Load:
    """The same request at the same moments straight from the simulator, with the SDK on
    aiohttp (the app's own transport): what the model gives, without the app around it."""
    client = direct_client(base_url, aiohttp=True)
    in_flight = InFlight()

    async def one(_index: int, moment: float) -> Timing:
        delay = moment - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        with in_flight:
            return await direct_stream(client, request, moment)

    try:
        await direct_stream(client, request, time.perf_counter())  # warm
        timings, seconds = await _schedule(arrivals, LEAD_SECONDS, one)
    finally:
        await client.close()
    return Load(arrivals, timings, in_flight.most, seconds)


def summary(timings: list[Timing]) -> dict[str, float]:
    """Percentiles over replies, in ms."""
    done = [t for t in timings if t.ok]
    return {
        "replies": len(timings),
        "failed": len(timings) - len(done),
        "sent_late_p99": 1000 * percentile([t.sent or 0.0 for t in done], 99),
        "ttft_p50": 1000 * percentile([t.first for t in done], 50),
        "ttft_p99": 1000 * percentile([t.first for t in done], 99),
        "largest_gap_p50": 1000 * percentile([t.largest_gap for t in done], 50),
        "largest_gap_p99": 1000 * percentile([t.largest_gap for t in done], 99),
        "in_order": all(t.in_order for t in done),
        "delivered_ratio": (sum(t.delivered for t in done) / max(1, sum(t.produced for t in done))),
        # What the failed replies met, most frequent first (the first words of each error).
        "errors": Counter(t.error[:60] for t in timings if t.error).most_common(3),
    }
