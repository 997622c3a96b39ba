"""Single sign-on as the pages show it (the whole journey, against a real provider, is in
tests/browser/test_single_sign_on.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from chatsite.middleware import content_security_policy

pytestmark = pytest.mark.django_db

ISSUER = "https://id.example.com:8443/realms/team"


@pytest.fixture
def sso(settings):
    settings.OIDC_SERVER_URL = ISSUER
    settings.OIDC_NAME = "Team ID"
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": "sso",
                    "name": "Team ID",
                    "client_id": "chatsite",
                    "secret": "secret",
                    "settings": {"server_url": ISSUER},
                }
            ]
        }
    }
    return settings


def test_the_login_page_offers_single_sign_on_beside_the_password(client, sso):
    page = client.get(reverse("login"), headers={"accept-language": "en"}).content.decode()
    assert "Log in with Team ID" in page
    assert 'action="/accounts/oidc/sso/login/"' in page
    assert 'name="password"' in page


def test_without_single_sign_on_the_login_page_offers_none(client):
    page = client.get(reverse("login"), headers={"accept-language": "en"}).content.decode()
    assert "Log in with" not in page


def test_the_button_is_translated(client, sso):
    page = client.get(reverse("login"), headers={"accept-language": "ko"}).content.decode()
    assert "Team ID(으)로 로그인" in page


def test_with_local_passwords_off_only_single_sign_on_is_offered(client, sso, make_user):
    sso.SOCIALACCOUNT_ONLY = True
    make_user("bob", "a-long-test-password")
    page = client.get(reverse("login"), headers={"accept-language": "en"}).content.decode()
    assert "Log in with Team ID" in page
    assert 'name="password"' not in page and reverse("signup") not in page
    # Posting a password anyway gets nobody in, and the sign-up page is gone.
    form = {"username": "bob", "password": "a-long-test-password"}
    response = client.post(reverse("login"), form)
    assert response.status_code == 403 and "_auth_user_id" not in client.session
    assert client.get(reverse("signup")).status_code == 404


def test_the_sidebar_offers_no_password_change_when_passwords_are_off(client, sso, make_user):
    sso.SOCIALACCOUNT_ONLY = True
    client.force_login(make_user("bob"))
    page = client.get(reverse("new_conversation")).content.decode()
    assert "/accounts/password/change/" not in page


def test_the_identity_providers_origin_may_receive_the_login_form(settings):
    settings.OIDC_SERVER_URL = ISSUER
    assert "form-action 'self' https://id.example.com:8443;" in content_security_policy()
    settings.OIDC_SERVER_URL = ""
    assert "form-action 'self';" in content_security_policy()
