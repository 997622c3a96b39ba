"""``python -m simulator``: serve the simulator standalone.

For benchmarks and for anyone who wants to point a client at it::

    python -m simulator --port 8001 --tps 30 --delay 0.2
    OPENAI_BASE_URL=http://127.0.0.1:8001/v1 OPENAI_API_KEY=sk-any some-client

Pace defaults come from ``SIMULATOR_TPS`` / ``SIMULATOR_FIRST_TOKEN_DELAY``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from .app import create_app
from .config import SimulatorConfig


def main(argv: Sequence[str] | None = None) -> None:
    config = SimulatorConfig.from_env()
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Serve the OpenAI-compatible chat-completions simulator.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--tps",
        type=float,
        default=config.tokens_per_second or 0.0,
        help="tokens per second when streaming; 0 sends as fast as possible",
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=config.first_token_delay,
        help="seconds before the first content token",
    )
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    args = parser.parse_args(argv)

    config.tokens_per_second = args.tps or None
    config.first_token_delay = args.delay
    config.api_key = args.api_key
    print(f"Simulator on http://{args.host}:{args.port}/v1 (models: {', '.join(config.models)})")
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="asyncio",
        http="h11",
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
