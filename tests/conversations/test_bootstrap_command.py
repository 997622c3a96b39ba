from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from conversations.models import Persona

pytestmark = pytest.mark.django_db


def run() -> str:
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    return out.getvalue()


def test_an_empty_database_gets_personas_and_an_admin_whose_password_is_printed(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    output = run()
    assert Persona.objects.count() == 4
    password = output.split("password: ")[1].split()[0]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)


def test_the_second_run_creates_and_prints_nothing(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    run()
    output = run()
    assert "password" not in output
    assert get_user_model().objects.filter(is_superuser=True).count() == 1


def test_the_environment_names_the_admin(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "boss")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "chosen-password-77")
    output = run()
    assert "chosen-password-77" not in output
    assert get_user_model().objects.get(username="boss").check_password("chosen-password-77")
