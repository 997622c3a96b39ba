from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from conversations.models import ChatModel, Persona

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


def test_a_password_file_keeps_the_generated_password_out_of_the_output(monkeypatch, tmp_path):
    """Under systemd (an ExecStartPre) what bootstrap prints stays in the journal."""
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    secret = tmp_path / "admin-password"
    out = io.StringIO()
    call_command("bootstrap", password_file=str(secret), stdout=out)
    password = secret.read_text().split("password: ")[1].strip()
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert password not in out.getvalue() and str(secret) in out.getvalue()
    assert secret.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("locale", "names"),
    [
        ("C.UTF-8", "Assistant, Counselor, Chef, Fitness trainer"),
        ("en_US.UTF-8", "Assistant, Counselor, Chef, Fitness trainer"),
        ("ko_KR.UTF-8", "도우미, 심리 상담사, 셰프, 헬스 트레이너"),
    ],
)
def test_the_personas_are_named_in_the_operators_language(monkeypatch, locale, names):
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.setenv("LANG", locale)
    assert f"Created the starter personas: {names}" in run()


def test_an_empty_model_list_is_filled_from_the_server(model_server):
    output = run()

    assert ChatModel.objects.usable().filter(name="sim-vision").exists()
    assert "Filled the model list" in output


def test_a_model_list_that_holds_models_is_left_alone(model_server):
    ChatModel.objects.create(name="kept-by-the-admin")

    run()

    assert list(ChatModel.objects.values_list("name", flat=True)) == ["kept-by-the-admin"]


def test_a_server_that_does_not_answer_leaves_the_list_empty_with_a_note(model_server, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens there

    output = run()

    assert not ChatModel.objects.exists()
    assert "sync_models" in output
    assert Persona.objects.count() == 4
