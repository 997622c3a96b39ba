"""One daphne process with production settings (DJANGO_DEBUG=0, DJANGO_HTTPS=1, collected
static files), attacked and inspected from outside, its stdout kept: what a real deployment
serves and logs."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from channels.db import database_sync_to_async
from django.conf import settings as django_settings

from conversations import services
from conversations.models import Status
from tests.multiprocess.remote import RemoteSocket
from tests.servers import ROOT, Daphne, serve_command, session_cookie

from .test_api_key_never_leaks import CANARY, assert_no_key

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer"),
]

HOST = "chat.test"
# What daphne's access log and our log formatter write: anything else is a stray line.
LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+ .*"  # chatsite.logs.OneLineFormatter
    r"|\S+:\d+ - - \[[^\]]+\] \"[A-Z]+ \S+\" (\d{3}|-) (\d+|-))$"  # daphne's access log
)


class LoggedDaphne(Daphne):
    """`Daphne` with its stdout and stderr kept in a file."""

    def __init__(self, log: Path, **env: str) -> None:
        super().__init__(**env)
        self.log = log

    def start(self, timeout: float = 30) -> LoggedDaphne:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                serve_command(self.port, self.application),
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"daphne did not start:\n{self.log.read_text()}")

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


@pytest.fixture(scope="module")
def production(
    django_db_setup, django_db_blocker, sim_server, tmp_path_factory
) -> Iterator[LoggedDaphne]:
    workdir = tmp_path_factory.mktemp("production")
    env = {
        "DJANGO_DEBUG": "0",
        "DJANGO_HTTPS": "1",
        # The suite's own key, so the session cookies it makes are valid there.
        "DJANGO_SECRET_KEY": django_settings.SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": f"{HOST},127.0.0.1",
        "DJANGO_CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
        "DJANGO_STATIC_ROOT": str(workdir / "static"),
        "OPENAI_API_KEY": CANARY,
        "OPENAI_BASE_URL": sim_server.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "LOG_LEVEL": "INFO",
    }
    with django_db_blocker.unblock():
        server = LoggedDaphne(workdir / "daphne.log", **env)
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collected.returncode == 0, collected.stderr
    server.start()
    yield server
    server.stop()


def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """GET without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers={"Host": HOST, **headers})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def https(server: LoggedDaphne, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """As the proxy forwards a request that arrived over HTTPS."""
    return fetch(server.url + path, **{"X-Forwarded-Proto": "https", **headers})


MODULE_IMPORT = re.compile(r"""(?:from\s*|import\s*\(?\s*)["'](\.{1,2}/[^"']+)["']""")


def test_static_files_have_hashed_names_and_are_cached_for_good(production, owner, personas):
    """Production static files come from whitenoise under content-hashed names, compressed
    and cached as immutable; every module a page's script imports is hashed too, so a deploy
    never mixes old and new modules in one browser."""
    conversation = services.start_conversation(user=owner)
    status, _, page = https(production, f"/c/{conversation.pk}/", Cookie=session_cookie(owner))
    assert status == 200
    assets = re.findall(rb'(?:src|href)="(/static/[^"]+)"', page)
    assert assets, "the login page links no static file"
    queue = [asset.decode() for asset in assets]
    seen: set[str] = set()
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", path), f"{path} has no hash in its name"
        status, headers, body = https(production, path, **{"Accept-Encoding": "gzip"})
        assert status == 200, path
        assert "immutable" in headers["Cache-Control"], path
        assert "max-age=315360000" in headers["Cache-Control"], path
        if path.endswith(".js"):
            assert headers.get("Content-Encoding") == "gzip", path
            status, _, body = https(production, path)
            base = path.rsplit("/", 1)[0]
            for target in MODULE_IMPORT.findall(body.decode()):
                parts = f"{base}/{target}".split("/")
                resolved: list[str] = []
                for part in parts:
                    if part == "..":
                        resolved.pop()
                    elif part != ".":
                        resolved.append(part)
                queue.append("/".join(resolved))
    assert len([p for p in seen if p.endswith(".js")]) >= 5
    assert any("/vendor/" in p for p in seen)


def test_plain_http_is_redirected_and_https_is_strict(production):
    """Behind TLS: a plain-HTTP request is sent to HTTPS, browsers are told to use HTTPS
    only (HSTS), and cookies are never sent over plain HTTP."""
    status, headers, _ = fetch(production.url + "/accounts/login/")
    assert status == 301
    assert headers["Location"] == f"https://{HOST}/accounts/login/"
    status, headers, _ = https(production, "/accounts/login/")
    assert status == 200
    assert headers["Strict-Transport-Security"] == ("max-age=31536000; includeSubDomains; preload")
    cookie = headers["Set-Cookie"]
    assert "csrftoken=" in cookie and "Secure" in cookie
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in headers["Content-Security-Policy"]


def test_healthz_answers_a_plain_http_probe(production):
    status, _, body = fetch(production.url + "/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "database": "ok", "channel_layer": "ok"}


def test_an_error_page_in_production_shows_no_detail(production):
    status, _, body = https(production, "/no/such/page/")
    assert status == 404
    assert b"Traceback" not in body and b"urlpatterns" not in body


async def test_a_message_over_daphnes_limit_closes_that_socket_only(
    production, owner, outsider, personas, model_server
):
    """A 2 MiB frame (memory exhaustion, one frame at a time): daphne refuses it before the
    app sees it and closes that connection (1009, message too big); a reply another user is
    receiving from the same process goes on."""
    model_server.config.tokens_per_second = 100
    own = await database_sync_to_async(services.start_conversation)(user=owner)
    theirs = await database_sync_to_async(services.start_conversation)(user=outsider)
    owner_cookie = await database_sync_to_async(session_cookie)(owner)
    outsider_cookie = await database_sync_to_async(session_cookie)(outsider)
    async with (
        RemoteSocket(production.url, own.pk, owner_cookie) as attacker,
        RemoteSocket(production.url, theirs.pk, outsider_cookie) as victim,
    ):
        await attacker.until("ready")
        await victim.until("ready")
        await victim.say("Tell me something long [[sim:tokens=80]]")
        await victim.until("reply.delta")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await attacker.connection.send("x" * (2 * 1024 * 1024))
            await asyncio.wait_for(attacker.connection.recv(), 5)
        ended = await victim.until("reply.ended", timeout=15)
    # daphne sends 1009 (message too big) and drops the connection; the client may see the
    # drop before the close frame, while it is still sending.
    assert closed.value.rcvd is None or closed.value.rcvd.code == 1009
    assert ended["message"]["status"] == Status.COMPLETE


async def test_a_refused_key_reaches_neither_the_socket_nor_the_processs_log(
    production, owner, personas, model_server
):
    model_server.config.api_key = "sk-the-key-the-server-expects"
    conversation = await database_sync_to_async(services.start_conversation)(user=owner)
    cookie = await database_sync_to_async(session_cookie)(owner)
    async with RemoteSocket(production.url, conversation.pk, cookie) as socket:
        await socket.until("ready")
        await socket.say("Hello?")
        ended = await socket.until("reply.ended", timeout=15)
    assert ended["message"]["status"] == Status.ERROR
    assert_no_key("a socket frame", json.dumps(socket.frames))
    https(production, f"/c/{conversation.pk}/", Cookie=cookie)


def test_the_process_logs_one_line_per_event_and_never_the_key(production):
    """Read last: everything the module did to the process is in its log by now."""
    https(production, "/accounts/login/")
    time.sleep(0.2)
    lines = production.lines()
    assert lines, "the process logged nothing"
    stray = [line for line in lines if not LOG_LINE.match(line)]
    assert stray == [], f"lines that are not one event each: {stray[:5]}"
    assert_no_key("the process's log", "\n".join(lines))
