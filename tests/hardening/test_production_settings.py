"""Production settings: Django's deployment check, logs on stdout, `/healthz`."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from channels.layers import channel_layers
from django.db.utils import OperationalError
from django.test import AsyncClient

from chatsite import health

ROOT = Path(__file__).resolve().parents[2]


def production_env(**extra: str) -> dict[str, str]:
    """The environment docs/deploy.md asks for, on this machine's database and Redis if set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OPENAI_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_HTTPS": "1",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "chat.example.com",
            "DJANGO_CSRF_TRUSTED_ORIGINS": "https://chat.example.com",
            **extra,
        }
    )
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_deployment_check_is_clean_with_production_settings():
    """`manage.py check --deploy` lists what a production site gets wrong (no HSTS, cookies
    sent over HTTP, DEBUG on, a short key...). With the production variables it must list
    nothing, not even a warning."""
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_the_deployment_check_would_catch_a_site_served_without_https_settings():
    """The control: the check is not blind. The same site without DJANGO_HTTPS is flagged."""
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        production_env(DJANGO_HTTPS="0"),
    )
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout  # no HSTS


LOG_EVENTS = """
import logging
import django
django.setup()
log = logging.getLogger("conversations.replies")
log.info("first event")
try:
    raise ValueError("a failure\\nwith a second line")
except ValueError:
    log.exception("second event, with its traceback")
log.warning("third event mentions the key %s by accident", "sk-canary-in-a-log-line-0042")
"""


def test_logs_are_one_line_per_event_on_stdout_without_the_key():
    """A log collector reading stdout takes each line as an event: a traceback spread over
    twenty lines becomes twenty events, and a key in a line ends up in the log store."""
    result = run(["-c", LOG_EVENTS], production_env(OPENAI_API_KEY="sk-canary-in-a-log-line-0042"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 3, lines
    assert "first event" in lines[0]
    assert "second event" in lines[1] and "Traceback" in lines[1]
    assert "ValueError: a failure\\nwith a second line" in lines[1]
    assert "third event" in lines[2] and "[redacted]" in lines[2]
    assert "canary" not in result.stdout


# /healthz


@pytest.mark.django_db(transaction=True)
async def test_healthz_answers_ok_without_a_login(isolated_channel_layer):
    response = await AsyncClient().get("/healthz")
    assert response.status_code == 200
    assert json.loads(response.content) == {
        "status": "ok",
        "database": "ok",
        "channel_layer": "ok",
    }
    assert "no-cache" in response.headers["Cache-Control"]
    assert (await AsyncClient().head("/healthz")).status_code == 200
    # Probes come every few seconds for months: none may leave a channel subscribed.
    from channels.layers import get_channel_layer

    assert not [name for name in get_channel_layer().channels if "healthz" in name]


@pytest.mark.django_db(transaction=True)
async def test_healthz_is_503_when_the_channel_layer_is_unreachable(
    isolated_channel_layer, settings
):
    """A process whose Redis is gone cannot deliver a single token to another process: a
    load balancer must stop sending it sockets."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens on port 1
        }
    }
    channel_layers.backends.clear()
    response = await AsyncClient().get("/healthz")
    channel_layers.backends.clear()
    body = json.loads(response.content)
    assert response.status_code == 503
    assert body["status"] == "unavailable" and body["database"] == "ok"
    assert body["channel_layer"].startswith("failed")
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db(transaction=True)
async def test_healthz_is_503_when_the_database_fails(isolated_channel_layer, monkeypatch):
    class Broken:
        def cursor(self):
            raise OperationalError("connection to server at db.internal failed: password=x")

    monkeypatch.setattr(health, "connection", Broken())
    response = await AsyncClient().get("/healthz")
    body = json.loads(response.content)
    assert response.status_code == 503
    assert body == {
        "status": "unavailable",
        "database": "failed (OperationalError)",
        "channel_layer": "ok",
    }
    assert "db.internal" not in response.content.decode()


@pytest.mark.django_db(transaction=True)
async def test_healthz_is_not_redirected_to_https(isolated_channel_layer, settings):
    """Probes talk plain HTTP to the process; every other page goes to HTTPS."""
    settings.SECURE_SSL_REDIRECT = True
    assert (await AsyncClient().get("/healthz")).status_code == 200
    assert (await AsyncClient().get("/accounts/login/")).status_code == 301
