"""Accounts (django-allauth): login by username or email, sign-up with an email, password
reset by email, password change, email confirmation by setting, single sign-on only."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"
NEW_PASSWORD = "another-quiet-harbor-77"


def sign_up(client, username="carol", email="carol@example.com", password="quiet-harbor-42x"):
    return client.post(
        reverse("signup"),
        {"username": username, "email": email, "password1": password, "password2": password},
        headers={"accept-language": "en"},
    )


def test_the_login_page_is_served_to_strangers(client):
    response = client.get(reverse("login"), headers={"accept-language": "en"})
    assert response.status_code == 200
    assert b"Log in" in response.content


def test_logging_in_by_username_leads_to_the_chat(client, make_user, personas):
    make_user("bob", PASSWORD)
    response = client.post(reverse("login"), {"username": "bob", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_logging_in_by_email_works_too(client, make_user, personas):
    make_user("bob", PASSWORD, email="bob@example.com")
    response = client.post(reverse("login"), {"username": "Bob@Example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_a_wrong_password_is_refused_with_a_sentence(client, make_user):
    make_user("bob", PASSWORD)
    response = client.post(
        reverse("login"),
        {"username": "bob", "password": "wrong"},
        headers={"accept-language": "en"},
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert "didn't match" in response.content.decode()


def test_logging_out_takes_a_post(client, owner):
    client.force_login(owner)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_signing_up_creates_an_account_with_its_email_and_logs_in(client, personas):
    response = sign_up(client)
    assert response.status_code == 302
    user = get_user_model().objects.get(username="carol")
    assert user.email == "carol@example.com"
    assert client.get("/").status_code == 200
    # Email confirmation is off unless EMAIL_VERIFICATION says otherwise: no mail.
    assert mail.outbox == []


def test_sign_up_asks_for_an_email(client):
    response = sign_up(client, email="")
    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert not get_user_model().objects.filter(username="carol").exists()


def test_sign_up_refuses_an_email_already_taken(client, make_user):
    make_user("bob", PASSWORD, email="carol@example.com")
    response = sign_up(client)
    assert response.status_code == 200
    assert response.context["form"].errors["email"]


def test_sign_up_applies_the_password_validators(client):
    response = sign_up(client, username="dave", password="123")
    assert response.status_code == 200
    assert response.context["form"].errors["password1"]
    assert not get_user_model().objects.filter(username="dave").exists()


def test_sign_up_can_be_switched_off(client, settings):
    settings.ALLOW_SIGNUP = False
    response = sign_up(client, username="erin")
    assert response.status_code == 404
    assert not get_user_model().objects.filter(username="erin").exists()
    assert b"/accounts/signup/" not in client.get(reverse("login")).content


def test_the_login_page_links_to_sign_up_when_open(client):
    assert b"/accounts/signup/" in client.get(reverse("login")).content


def test_email_confirmation_can_be_required(client, settings, personas):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    response = sign_up(client)
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["carol@example.com"]
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[0].body).group(0)
    # Until the link is followed the password alone does not let them in.
    client.post(reverse("login"), {"username": "carol", "password": "quiet-harbor-42x"})
    assert client.get("/").status_code == 302
    client.post(link.split("testserver", 1)[1])
    response = client.post(reverse("login"), {"username": "carol", "password": "quiet-harbor-42x"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_a_forgotten_password_is_reset_by_email(client, make_user, personas):
    make_user("bob", PASSWORD, email="bob@example.com")
    page = client.get(reverse("login"), headers={"accept-language": "en"}).content.decode()
    assert reverse("account_reset_password") in page
    response = client.post(reverse("account_reset_password"), {"email": "bob@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["bob@example.com"]
    link = re.search(r"https?://testserver(/accounts/password/reset/key/\S+/)", mail.outbox[0].body)
    form_url = client.get(link.group(1)).url  # the key moves into the session
    response = client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    old = client.post(reverse("login"), {"username": "bob", "password": PASSWORD})
    assert old.status_code == 200
    response = client.post(reverse("login"), {"username": "bob", "password": NEW_PASSWORD})
    assert response.status_code == 302


def test_the_password_change_page_is_in_the_sidebar_and_in_the_apps_look(
    client, make_user, personas
):
    user = make_user("bob", PASSWORD)
    client.force_login(user)
    chat = client.get(reverse("new_conversation"), headers={"accept-language": "en"})
    url = reverse("account_change_password")
    assert f'href="{url}"' in chat.content.decode()
    page = client.get(url, headers={"accept-language": "en"}).content.decode()
    assert 'class="product"' in page and "app.css" in page
    assert "<h1>Change password</h1>" in page
    response = client.post(
        url, {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    # Still logged in after the change.
    assert client.get("/").status_code == 200


def test_the_password_change_page_needs_the_old_password(client, make_user):
    user = make_user("bob", PASSWORD)
    client.force_login(user)
    url = reverse("account_change_password")
    response = client.post(
        url, {"oldpassword": "wrong", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
