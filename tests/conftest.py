"""Fixtures shared by the whole suite: people and personas."""

from __future__ import annotations

import contextlib
import os

import pytest

from conversations import snapshots
from conversations.models import Persona
from conversations.starter import ensure_starter_personas

# Playwright's sync API runs an event loop in the test thread; the ORM calls the browser
# tests make around it are synchronous and safe there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def make_user(django_user_model):
    def make(username: str = "alice", password: str = "a-long-test-password", **extra):
        return django_user_model.objects.create_user(username=username, password=password, **extra)

    return make


@pytest.fixture(autouse=True)
def _tables_read_afresh():
    """Each test reads the admin's small tables (`conversations.snapshots`) from its own
    database: the one before it was rolled back under what the process held."""
    snapshots.forget_all()


@pytest.fixture
def owner(make_user):
    return make_user("owner")


@pytest.fixture
def outsider(make_user):
    return make_user("outsider")


@pytest.fixture
def personas(db) -> list[Persona]:
    ensure_starter_personas()
    return list(Persona.objects.all())


@pytest.fixture
def default_persona(personas) -> Persona:
    persona = Persona.objects.default()
    assert persona is not None
    return persona


@pytest.fixture(scope="session", autouse=True)
def _test_database_dropped_at_the_end(django_db_setup, django_db_blocker):
    """End the connections the suite's helper threads left open (asgiref's executor, the
    simulator's workers), which would stop pytest-django from dropping a PostgreSQL test
    database: it would stay behind, one per run."""
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture(scope="session")
def sim_server():
    """One simulator on a real port for the session; each test resets its configuration."""
    from simulator.config import SimulatorConfig
    from simulator.server import SimulatorServer

    config = SimulatorConfig()
    as_the_session_made_it(config)
    server = SimulatorServer(config)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def model_server(sim_server, settings):
    """Point the app at the simulator over real HTTP, with the real SDK, and short timeouts.

    The simulator keeps the last 50 request bodies (``config.requests``): what reached the model.
    Afterwards its configuration is the session's again: a key it was told to ask for, or a
    fault, must not reach the tests that use `sim_server` as it comes (their servers' replies
    failed with "refused the API key" after a test that set one).
    """
    as_the_session_made_it(sim_server.config)
    sim_server.config.record_requests = 50
    settings.DEMO_MODE = False
    settings.OPENAI_API_KEY = "sk-test-not-a-real-key"
    settings.OPENAI_BASE_URL = sim_server.base_url
    settings.OPENAI_READ_TIMEOUT = 1.0
    settings.OPENAI_CONNECT_TIMEOUT = 1.0
    settings.OPENAI_MAX_RETRIES = 0
    settings.CHAT_FLUSH_SECONDS = 0.2
    yield sim_server
    as_the_session_made_it(sim_server.config)


def as_the_session_made_it(config) -> None:
    config.reset()
    config.tokens_per_second = None
    config.first_token_delay = 0.0


@pytest.fixture
async def isolated_channel_layer():
    """A fresh channel layer per test, and the end of every reply the test started.

    Replies run as background tasks and a Redis layer's connections belong to one event loop:
    neither may leak into the next test's loop.
    """
    import asyncio

    from channels.layers import channel_layers

    from conversations import llm, replies
    from conversations.layers import close_layer

    channel_layers.backends.clear()
    yield
    async with asyncio.timeout(20):
        await replies.wait_for_replies()
    await replies.close_control()
    await llm.close_client()
    for layer in channel_layers.backends.values():
        await close_layer(layer)
    channel_layers.backends.clear()


def pytest_sessionfinish(session, exitstatus):
    """pytest-django drops the SQLite test database but leaves its WAL files behind; the
    attachments the run stored (MEDIA_ROOT of tests/settings.py) go too."""
    import shutil

    from django.conf import settings

    if "chatsite-test-media-" in str(settings.MEDIA_ROOT):
        shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)

    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if name and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{name}{suffix}")
