"""Browser journeys: one daphne serving the test database, one Chromium, a fresh context per test.

pytest-django's `live_server` speaks only WSGI, so the app runs in a daphne child process,
started once the test database exists and pointed at it (a file with SQLite, `test_<name>` on
PostgreSQL) and at the session's simulator. Tests use `transactional_db`: what they write is
committed, so the child sees it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from playwright.sync_api import expect

from conversations import services
from conversations.models import Message, Status
from conversations.starter import ensure_starter_personas
from tests.servers import serve_command

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "a-long-browser-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    user = quote(settings.get("USER") or "", safe="")
    password = quote(settings.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings.get("HOST") or "127.0.0.1"
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{settings['NAME']}"


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"daphne did not start:\n{log.read_text()}")


@contextlib.contextmanager
def serve_app(database_url: str, sim_url: str, log: Path, **extra_env: str) -> Iterator[str]:
    """daphne serving the app on the test database, with `extra_env` on top of the tests'
    environment; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DJANGO_DEBUG": "1",
        # The same key as this process: sessions made here (see `login`) are valid there.
        "DJANGO_SECRET_KEY": django_settings.SECRET_KEY,
        "DATABASE_URL": database_url,
        "DJANGO_MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
        "OPENAI_BASE_URL": sim_url,
        "OPENAI_API_KEY": "sk-test-not-a-real-key",
        "OPENAI_READ_TIMEOUT": "2",
        "OPENAI_MAX_RETRIES": "0",
        "CHAT_FLUSH_SECONDS": "0.2",
        "CHAT_MESSAGES_PER_MINUTE": "1000",
        "CHAT_MAX_CONCURRENT_REPLIES": "10",
        "ALLOW_SIGNUP": "1",
        # Titles stay the first message, cut: a journey's sidebar does not change under it
        # (tests/features/test_model_titles.py asks for the model's).
        "CHAT_MODEL_TITLES": "0",
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    with log.open("w") as out:
        process = subprocess.Popen(
            serve_command(port),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def test_database_url(django_db_setup, django_db_blocker) -> str:
    with django_db_blocker.unblock():
        return _database_url()


@pytest.fixture(scope="session")
def app_server(test_database_url, sim_server, tmp_path_factory) -> Iterator[str]:
    """daphne serving the app on the test database; yields its base URL."""
    log = tmp_path_factory.mktemp("daphne") / "daphne.log"
    with serve_app(test_database_url, sim_server.base_url, log) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per module. Not per session: Playwright's sync API keeps an event loop
    running in this thread while it is started, and the asyncio tests after the browser
    tests need the thread free."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("The browser tests need Debian's chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def fast_model(sim_server):
    """The simulator as fast as it goes unless a message says otherwise ([[sim:tps=…]]),
    keeping the last 50 request bodies."""
    sim_server.config.reset()
    sim_server.config.tokens_per_second = None
    sim_server.config.first_token_delay = 0.0
    sim_server.config.record_requests = 50
    return sim_server


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.call_failed = report.failed
    return report


@pytest.fixture
def new_context(request, browser, app_server, transactional_db, fast_model) -> Iterator[Callable]:
    """Make browser contexts (English unless told); each page fails its test on a JS error
    or a Content-Security-Policy violation.

    When a test fails, a screenshot of each of its pages is left in BROWSER_SCREENSHOTS (a
    directory), if that is set.
    """
    contexts = []
    errors: list[str] = []

    def watch(page) -> None:
        page.on("pageerror", lambda error: errors.append(str(error)))
        # The Content-Security-Policy refusing anything (an inline style or script) is a bug.
        page.on(
            "console",
            lambda message: (
                errors.append(message.text)
                if message.type == "error" and "Content Security Policy" in message.text
                else None
            ),
        )

    def make(language: str = "en", **options):
        context = browser.new_context(
            base_url=app_server,
            locale=language,
            extra_http_headers={"Accept-Language": language},
            viewport=options.pop("viewport", {"width": 1200, "height": 800}),
            **options,
        )
        context.set_default_timeout(15_000)
        context.on("page", lambda page: watch(page))
        contexts.append(context)
        return context

    yield make
    shots = os.environ.get("BROWSER_SCREENSHOTS")
    if shots and getattr(request.node, "call_failed", False):
        Path(shots).mkdir(parents=True, exist_ok=True)
        for i, context in enumerate(contexts):
            for j, page in enumerate(context.pages):
                page.screenshot(path=f"{shots}/{request.node.name}-{i}-{j}.png")
    for context in contexts:
        context.close()
    _let_replies_end()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _let_replies_end(timeout: float = 15.0) -> None:
    """Wait for the app's replies to end before the test's data is flushed.

    A reply outlives its tab. Its end, saved while the flush's TRUNCATE takes its locks, is a
    deadlock on PostgreSQL (the end's UPDATEs and the TRUNCATE take the same tables in another
    order), which fails the test that happens to be tearing down."""
    streaming = Message.objects.filter(status=Status.STREAMING)
    deadline = time.monotonic() + timeout
    while streaming.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def personas_in_db(transactional_db):
    ensure_starter_personas()


@pytest.fixture
def login(new_context, app_server, personas_in_db, django_user_model) -> Callable:
    """A logged-in page for a new user (the session made here, as the child's hasher differs)."""

    def make(username: str = "browser", language: str = "en", **options):
        user = django_user_model.objects.filter(username=username).first()
        if user is None:
            user = django_user_model.objects.create_user(username=username, password=PASSWORD)
        client = Client()
        client.force_login(user)
        context = new_context(language, **options)
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": app_server,
                }
            ]
        )
        page = context.new_page()
        page.user = user
        return page

    return make


@pytest.fixture
def chat(login):
    """A logged-in page on a fresh conversation, its socket open."""

    def open_chat(**options):
        page = login(**options)
        conversation = services.start_conversation(user=page.user)
        page.goto(f"/c/{conversation.pk}/")
        expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
        page.conversation = conversation
        return page

    return open_chat
