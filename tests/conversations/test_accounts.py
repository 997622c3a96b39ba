from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_login_page_is_served_to_strangers(client):
    response = client.get(reverse("login"), headers={"accept-language": "en"})
    assert response.status_code == 200
    assert b"Log in" in response.content


def test_logging_in_leads_to_the_chat(client, make_user, personas):
    make_user("bob", "a-long-test-password")
    response = client.post(
        reverse("login"), {"username": "bob", "password": "a-long-test-password"}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_logging_out_takes_a_post(client, owner):
    client.force_login(owner)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_signing_up_creates_an_account_and_logs_in(client, personas):
    response = client.post(
        reverse("signup"),
        {"username": "carol", "password1": "quiet-harbor-42x", "password2": "quiet-harbor-42x"},
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="carol").exists()
    assert client.get("/").status_code == 200


def test_sign_up_applies_the_password_validators(client):
    response = client.post(
        reverse("signup"), {"username": "dave", "password1": "123", "password2": "123"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["password2"]
    assert not get_user_model().objects.filter(username="dave").exists()


def test_sign_up_can_be_switched_off(client, settings):
    settings.ALLOW_SIGNUP = False
    response = client.post(
        reverse("signup"),
        {"username": "erin", "password1": "quiet-harbor-42x", "password2": "quiet-harbor-42x"},
    )
    assert response.status_code == 404
    assert not get_user_model().objects.filter(username="erin").exists()
    assert b"/accounts/signup/" not in client.get(reverse("login")).content


def test_the_login_page_links_to_sign_up_when_open(client):
    assert b"/accounts/signup/" in client.get(reverse("login")).content
