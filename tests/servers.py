"""Real server processes for tests that cross a process boundary: daphne on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_database_url() -> str:
    """A DATABASE_URL for the test database this process uses, for a child process."""
    settings = connection.settings_dict
    if settings["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


def serve_command(port: int, application: str = "chatsite.asgi:application") -> list[str]:
    """The command that serves `application` on 127.0.0.1:`port` as production serves the app:
    daphne started by `python -m chatsite.serve` (uvloop's event loop)."""
    return [sys.executable, "-m", "chatsite.serve", "-b", "127.0.0.1", "-p", str(port), application]


class Daphne:
    """The app (or `application`) in daphne in a child process, on the test database
    (`serve_command`)."""

    def __init__(self, application: str = "chatsite.asgi:application", **env: str) -> None:
        self.application = application
        # What the process writes (its log), kept for `output` as long as this object lives.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        self.port = free_port()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            "DJANGO_DEBUG": "1",
            "DJANGO_SECRET_KEY": "tests-only-secret-key-not-for-production-use",
            "DATABASE_URL": test_database_url(),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Daphne:
        self.process = subprocess.Popen(
            serve_command(self.port, self.application),
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/accounts/login/", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("daphne did not start in time")

    def output(self) -> str:
        """What the process has written so far (its log)."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def kill(self) -> None:
        """Die at once, as a crashed server does: no cleanup runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Daphne:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def session_cookie(user: Any) -> str:
    """A session cookie header value for `user`, as a browser that logged in would send."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
