"""The demo model remembers no request body, and a model that records keeps only its latest.

A regeneration sends the whole conversation again. With a 600 KB system prompt, 150 of them
left about 90 MB in the simulator for as long as the server ran, because it kept every body.
The attack goes through the real SDK over real HTTP; tracemalloc counts what the process
still holds once every answer is in.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

from openai import AsyncOpenAI

from simulator import SimulatorConfig, SimulatorServer

PROMPT_CHARS = 600_000
REGENERATIONS = 150
KEEP = 10
# What the SDK, the server and the interpreter allocate for themselves during the attack: far
# below the 90 MB the kept bodies would make.
SLACK_BYTES = 5_000_000
# The environment `make run` gives the demo model.
MAKE_RUN_ENV = {"SIMULATOR_TPS": "40", "SIMULATOR_FIRST_TOKEN_DELAY": "0.3"}


def messages(number: int) -> list[dict[str, str]]:
    prompt = ("You are a careful assistant. " * (PROMPT_CHARS // 29 + 1))[:PROMPT_CHARS]
    return [
        {"role": "system", "content": prompt},
        {"role": "user", "content": f"Regeneration {number}"},
    ]


async def bytes_held_after_regenerations(server: SimulatorServer) -> int:
    """Send REGENERATIONS requests with a PROMPT_CHARS system prompt (eight at a time) and
    return how many bytes allocated meanwhile are still alive when the last answer is in."""
    sdk = AsyncOpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0)
    gate = asyncio.Semaphore(8)

    async def regenerate(number: int) -> None:
        async with gate:
            await sdk.chat.completions.create(
                model="sim-1", messages=messages(number), max_completion_tokens=5
            )

    was_tracing = tracemalloc.is_tracing()
    try:
        await regenerate(-1)  # connections, caches and imports, before counting
        gc.collect()
        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        await asyncio.gather(*(regenerate(number) for number in range(REGENERATIONS)))
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
        await sdk.close()
    return after - before


def recorded_chars(config: SimulatorConfig) -> int:
    return sum(len(m["content"]) for body in config.requests for m in body["messages"])


def test_the_default_and_the_demo_configs_record_nothing():
    for config in (SimulatorConfig(), SimulatorConfig.from_env(MAKE_RUN_ENV)):
        config.record({"model": "sim-1", "messages": messages(0)})

        assert config.record_requests == 0
        assert config.requests == []
        assert config.request_count == 1


async def test_the_demo_model_holds_no_request_after_150_big_regenerations():
    with SimulatorServer(SimulatorConfig.from_env({})) as server:
        held = await bytes_held_after_regenerations(server)

        assert server.config.request_count == REGENERATIONS + 1
        assert server.config.requests == []
    print(f"\ndemo model: {held / 1e6:.1f} MB held after {REGENERATIONS} regenerations")
    assert held < SLACK_BYTES


async def test_a_recording_model_holds_only_its_latest_requests():
    with SimulatorServer(SimulatorConfig(record_requests=KEEP)) as server:
        held = await bytes_held_after_regenerations(server)

        assert len(server.config.requests) == KEEP
        assert recorded_chars(server.config) <= KEEP * (PROMPT_CHARS + 100)

        last = AsyncOpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0)
        await last.chat.completions.create(
            model="sim-1", messages=messages(REGENERATIONS), max_completion_tokens=5
        )
        await last.close()
        kept = server.config.requests
        assert len(kept) == KEEP
        assert kept[-1]["messages"][-1]["content"] == f"Regeneration {REGENERATIONS}"
    print(f"\nrecording {KEEP}: {held / 1e6:.1f} MB held after {REGENERATIONS} regenerations")
    assert held < KEEP * PROMPT_CHARS + SLACK_BYTES
