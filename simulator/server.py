"""Running the simulator on a real port inside the current process.

Tests and the demo both need a live HTTP endpoint the real ``openai`` SDK can talk to, but
neither wants a second process. :class:`SimulatorServer` runs uvicorn in a daemon thread
with its own event loop, on a socket bound here so ``port=0`` yields a free ephemeral
port that is known before the thread starts. ``start()`` returns only once uvicorn
accepts connections; ``stop()`` returns promptly even with a stalled stream open.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from .app import create_app
from .config import SimulatorConfig
from .delivery import Activity

_START_TIMEOUT = 10.0
_STOP_GRACE = 2


class SimulatorServer:
    """An OpenAI-compatible simulator listening on ``host:port`` in a background thread.

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``config`` is the live
    :class:`SimulatorConfig` the app reads on every request.
    """

    def __init__(
        self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self.host = host
        self._requested_port = port
        self._app = create_app(self.config)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the simulator is not started")
        return int(self._socket.getsockname()[1])

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's ``base_url``: ``http://<host>:<port>/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def activity(self) -> Activity:
        """Live counters: completions being sent now, and clients that left mid-response."""
        activity: Activity = self._app.state.activity
        return activity

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> SimulatorServer:
        if self._thread is not None:
            raise RuntimeError("a SimulatorServer can be started only once")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(128)
        self._socket = sock

        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            log_config=None,  # leave the host process's logging setup alone
            lifespan="off",
            loop="asyncio",
            http="h11",
            timeout_graceful_shutdown=_STOP_GRACE,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()

        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the simulator thread exited during startup")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the simulator did not start within 10 seconds")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving: stalled and paced streams are cut, then the thread is joined."""
        self._app.state.stopping.set()
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None and thread.is_alive():
            thread.join(_STOP_GRACE)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(_STOP_GRACE)
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_shared: SimulatorServer | None = None
_shared_lock = threading.Lock()


def ensure_background_simulator() -> str:
    """Start this process's shared simulator on first call; return its ``base_url``.

    The demo mode of the app calls this when no real OpenAI key exists. It is configured by
    :meth:`SimulatorConfig.from_env` and lives as long as the process (daemon thread).
    """
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.running:
            _shared = SimulatorServer(SimulatorConfig.from_env()).start()
        return _shared.base_url
