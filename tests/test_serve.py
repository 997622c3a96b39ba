"""`python -m chatsite.serve`: daphne on uvloop's event loop, or asyncio's when told."""

from __future__ import annotations

import sys
import urllib.request

import pytest

from chatsite import serve
from tests.servers import Daphne


def loop_of(server: Daphne) -> str:
    server.start()
    try:
        with urllib.request.urlopen(server.url, timeout=10) as response:
            return response.read().decode()
    finally:
        server.stop()


def test_daphne_runs_on_uvloop() -> None:
    assert loop_of(Daphne("tests.serve_probe:application")) == "uvloop.Loop"


def test_asyncio_loop_when_told() -> None:
    server = Daphne("tests.serve_probe:application", CHAT_UVLOOP="0")
    assert loop_of(server) == "asyncio.unix_events._UnixSelectorEventLoop"


def test_refuses_once_daphne_made_its_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """daphne makes its loop at import: a policy set after it would be silently ignored."""
    monkeypatch.setitem(sys.modules, "daphne.server", object())
    with pytest.raises(RuntimeError, match="loop is made already"):
        serve.main(["chatsite.asgi:application"])
