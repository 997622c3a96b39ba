"""Single sign-on, end to end: Chromium, the app in daphne with local passwords off, and a
real OpenID Connect provider (oidc-provider-mock, from PyPI) on 127.0.0.1.

The provider's authorization page lists the people it knows; clicking one sends the browser
back to the app with a code, which the app exchanges for their ID token over HTTP.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from oidc_provider_mock import User
from oidc_provider_mock import app as oidc_app
from playwright.sync_api import expect
from werkzeug.serving import make_server

from tests.browser.conftest import serve_app

pytestmark = pytest.mark.browser

PEOPLE = [
    User(
        sub="ana-sub",
        claims={
            "email": "ana@example.com",
            "email_verified": True,
            "preferred_username": "ana",
            "name": "Ana Lima",
        },
    ),
    User(
        sub="old-sub",
        claims={
            "email": "Oldhand@example.com",
            "email_verified": True,
            "preferred_username": "oldhand-at-the-provider",
        },
    ),
    User(
        sub="eve-sub",
        claims={
            "email": "eve@elsewhere.org",
            "email_verified": True,
            "preferred_username": "eve",
        },
    ),
]


@pytest.fixture(scope="module")
def identity_provider() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = make_server("127.0.0.1", port, oidc_app(user_claims=PEOPLE), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def sso_app(test_database_url, sim_server, identity_provider, tmp_path_factory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("daphne-sso") / "daphne.log"
    with serve_app(
        test_database_url,
        sim_server.base_url,
        log,
        OIDC_SERVER_URL=identity_provider,
        OIDC_CLIENT_ID="chatsite",
        OIDC_CLIENT_SECRET="a-client-secret",
        OIDC_NAME="Example SSO",
        OIDC_ALLOWED_EMAIL_DOMAINS="example.com",
        PASSWORD_LOGIN="0",
    ) as url:
        yield url


def log_in_as(new_context, sso_app: str, sub: str):
    page = new_context().new_page()
    page.goto(f"{sso_app}/accounts/login/")
    # Local passwords are off: the page offers single sign-on only.
    expect(page.get_by_label("Password")).to_have_count(0)
    expect(page.get_by_role("link", name="Sign up")).to_have_count(0)
    page.get_by_role("button", name="Log in with Example SSO").click()
    page.get_by_role("button", name=sub).click()
    return page


def test_a_colleague_logs_in_by_single_sign_on(new_context, sso_app, personas_in_db):
    page = log_in_as(new_context, sso_app, "ana-sub")
    expect(page.get_by_role("navigation", name="Conversations")).to_be_visible()
    assert page.url.startswith(sso_app)
    user = get_user_model().objects.get(email="ana@example.com")
    assert user.username == "ana"
    expect(page.locator(".account .username")).to_have_text("ana")
    # No local password to change.
    expect(page.get_by_role("link", name="Change password")).to_have_count(0)

    # Next time the same person lands in the same account.
    page.get_by_role("button", name="Log out").click()
    page = log_in_as(new_context, sso_app, "ana-sub")
    expect(page.get_by_role("navigation", name="Conversations")).to_be_visible()
    assert get_user_model().objects.filter(email="ana@example.com").count() == 1


def test_someone_outside_the_allowed_domains_is_refused_with_a_sentence(
    new_context, sso_app, personas_in_db
):
    page = log_in_as(new_context, sso_app, "eve-sub")
    expect(page.get_by_role("alert")).to_have_text(
        "eve@elsewhere.org may not log in here: single sign-on accepts email addresses at "
        "example.com only."
    )
    assert not get_user_model().objects.filter(email="eve@elsewhere.org").exists()
    page.goto(f"{sso_app}/")
    expect(page).to_have_url(f"{sso_app}/accounts/login/?next=/")


def test_someone_who_had_a_password_lands_in_their_own_account(
    new_context, sso_app, personas_in_db, make_user
):
    """Their provider vouches for the address of an existing account: that account it is,
    with its conversations, not a new one."""
    existing = make_user("oldhand", email="oldhand@example.com")
    page = log_in_as(new_context, sso_app, "old-sub")
    expect(page.locator(".account .username")).to_have_text("oldhand")
    assert not get_user_model().objects.filter(username="oldhand-at-the-provider").exists()
    assert existing.socialaccount_set.get().uid == "old-sub"
