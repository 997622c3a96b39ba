"""Settings are read strictly: a value that cannot be understood stops the start with a sentence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from chatsite.settings import env_bool, env_mapping_int
from conversations.models import Persona

ROOT = Path(__file__).resolve().parent.parent


SUMMARY = (
    "import chatsite.settings as s, json; print(json.dumps({"
    "'debug': s.DEBUG, 'db': s.DATABASES['default']['ENGINE'], "
    "'layer': s.CHANNEL_LAYERS['default']['BACKEND'], 'demo': s.DEMO_MODE, "
    "'ssl': getattr(s, 'SECURE_SSL_REDIRECT', False)}))"
)


def load_settings(script: str = SUMMARY, **env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with exactly these variables, and run
    `script` (it prints what a test looks at)."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OPENAI_", "DATABASE_"))
    }
    clean.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_debug_a_missing_secret_key_refuses_to_start():
    result = load_settings(DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_debug_runs_with_the_defaults_sqlite_memory_layer_and_demo_model():
    result = load_settings(DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert '"db": "django.db.backends.sqlite3"' in result.stdout
    assert "conversations.layers.LocalChannelLayer" in result.stdout
    assert '"demo": true' in result.stdout


def test_database_and_redis_urls_switch_the_backends():
    result = load_settings(
        DJANGO_DEBUG="1",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/chat",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stderr
    assert "postgresql" in result.stdout
    assert "RedisPubSubChannelLayer" in result.stdout


@pytest.mark.parametrize(("value", "expected"), [(None, [True, 5]), ("0", [None, None])])
def test_postgresql_statements_are_prepared_unless_told_not_to(value, expected):
    env = {"DJANGO_DEBUG": "1", "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/chat"}
    if value is not None:
        env["DATABASE_PREPARED_STATEMENTS"] = value
    result = load_settings(
        "import chatsite.settings as s, json; o = s.DATABASES['default']['OPTIONS']; "
        "print(json.dumps([o.get('server_side_binding'), o.get('prepare_threshold')]))",
        **env,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected


@pytest.mark.django_db
def test_postgresql_plans_a_statement_once_per_connection():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's prepared statements (CI runs this suite again on it)")
    for _ in range(6):
        list(Persona.objects.filter(name="Nobody"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("conversations_persona" in statement for statement in prepared), prepared


def test_https_turns_on_the_redirect_and_production_runs_on_plain_http_without_it():
    on = load_settings(DJANGO_SECRET_KEY="x" * 50, DJANGO_HTTPS="1")
    off = load_settings(DJANGO_SECRET_KEY="x" * 50)
    assert '"ssl": true' in on.stdout
    assert '"ssl": false' in off.stdout


def test_a_key_makes_the_real_model_the_default():
    result = load_settings(DJANGO_DEBUG="1", OPENAI_API_KEY="sk-test")
    assert '"demo": false' in result.stdout


@pytest.mark.parametrize("value", ["maybe", "2", "yes please"])
def test_a_boolean_that_is_neither_on_nor_off_is_refused(monkeypatch, value):
    monkeypatch.setenv("SOME_FLAG", value)
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG must be 1 or 0"):
        env_bool("SOME_FLAG", False)


def test_per_model_context_budgets_are_parsed_and_checked(monkeypatch):
    monkeypatch.setenv("BUDGETS", "gpt-4o-mini=16000, llama3=8000")
    assert env_mapping_int("BUDGETS") == {"gpt-4o-mini": 16000, "llama3": 8000}
    monkeypatch.setenv("BUDGETS", "llama3:8000")
    with pytest.raises(ImproperlyConfigured, match="BUDGETS must look like"):
        env_mapping_int("BUDGETS")


def server_process_output(script: str, **env: str) -> str:
    """What `script` prints in a fresh interpreter that imports chatsite.asgi as daphne would,
    with the test environment's settings but `env` and no CHAT_GC_TUNING of its own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OPENAI_"))}
    clean.pop("CHAT_GC_TUNING", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, "DJANGO_DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("tuning", "expected"),
    [("", "(700, 10, 10) (20000, 2, 10) True"), ("0", "(700, 10, 10) (700, 10, 10) False")],
    ids=["default", "switched-off"],
)
def test_the_server_process_tunes_the_collector_unless_told_not_to(tuning, expected):
    script = (
        "import gc; before = gc.get_threshold(); import chatsite.asgi; "
        "print(before, gc.get_threshold(), gc.get_freeze_count() > 10_000)"
    )
    output = server_process_output(script, **({"CHAT_GC_TUNING": tuning} if tuning else {}))
    assert output.split("\n")[-2] == expected


def test_garbage_that_outlived_a_young_collection_waits_for_at_most_four_of_them():
    # A socket alive at a young collection moves to the middle generation; once it is gone, its
    # cycles (daphne's and autobahn's protocol objects refer to each other) are freed only by a
    # middle collection. Twelve such "sockets", each alive across one young collection: with a
    # middle collection every 21 young ones (a threshold of 20) all twelve would still be held.
    script = """
import gc, weakref
import chatsite.asgi

class Socket:
    pass

held = weakref.WeakSet()
for _ in range(12):
    socket = Socket()
    socket.protocol = {"socket": socket}
    held.add(socket)
    collections = sum(generation["collections"] for generation in gc.get_stats())
    in_flight = [[] for _ in range(gc.get_threshold()[0] + 1_000)]
    assert sum(generation["collections"] for generation in gc.get_stats()) == collections + 1
    del in_flight, socket
print(len(held))
"""
    # Freed by every fourth young collection but the one alive at it (promoted to the oldest).
    assert int(server_process_output(script).split()[-1]) == 3


def test_turning_local_passwords_off_without_single_sign_on_refuses_to_start():
    result = load_settings(DJANGO_DEBUG="1", PASSWORD_LOGIN="0")
    assert result.returncode != 0
    assert "set OIDC_SERVER_URL, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET" in result.stderr


def test_single_sign_on_without_its_client_refuses_to_start():
    result = load_settings(DJANGO_DEBUG="1", OIDC_SERVER_URL="https://id.example.com")
    assert result.returncode != 0
    assert "OIDC_CLIENT_ID and OIDC_CLIENT_SECRET must be too" in result.stderr


def test_an_unknown_email_verification_refuses_to_start():
    result = load_settings(DJANGO_DEBUG="1", EMAIL_VERIFICATION="sometimes")
    assert result.returncode != 0
    assert "EMAIL_VERIFICATION must be none, optional or mandatory" in result.stderr


def test_email_goes_by_smtp_when_email_host_is_set_and_to_the_console_otherwise():
    script = (
        "import chatsite.settings as s; print(s.EMAIL_BACKEND, getattr(s, 'EMAIL_PORT', ''), "
        "getattr(s, 'EMAIL_USE_TLS', ''), getattr(s, 'EMAIL_USE_SSL', ''))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "EMAIL_"))}
    for env, expected in [
        ({}, "console.EmailBackend"),
        (
            {"EMAIL_HOST": "smtp.example.com", "EMAIL_PORT": "465"},
            "smtp.EmailBackend 465 False True",
        ),
        # As copied from .env.example: the empty switches follow the port.
        (
            {"EMAIL_HOST": "smtp.example.com", "EMAIL_USE_TLS": "", "EMAIL_USE_SSL": ""},
            "smtp.EmailBackend 587 True False",
        ),
    ]:
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={**clean, "DJANGO_DEBUG": "1", **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert expected in result.stdout, result.stderr
