"""Accounts and sessions made before django-allauth's tables existed survive its arrival."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse

PASSWORD = "a-long-test-password"


def migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


@pytest.fixture
def before_allauth(transactional_db):
    """The database as it was before: no allauth table, our migrations up to the one before."""
    migrate([("socialaccount", None), ("account", None)])
    assert "account_emailaddress" not in connection.introspection.table_names()
    yield
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_old_accounts_log_in_by_username_and_email_and_keep_their_sessions(
    before_allauth, personas_after_migration
):
    user = get_user_model().objects.create_user(
        "oldtimer", email="Oldtimer@example.com", password=PASSWORD
    )
    # A browser logged in the old way: Django's ModelBackend in the session.
    browser = Client()
    browser.force_login(user, backend="django.contrib.auth.backends.ModelBackend")

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    personas_after_migration()

    assert browser.get(reverse("new_conversation")).status_code == 200
    for login in ["oldtimer", "oldtimer@example.com", "OLDTIMER@example.com"]:
        client = Client()
        response = client.post(reverse("login"), {"username": login, "password": PASSWORD})
        assert response.status_code == 302, login
        assert client.get(reverse("new_conversation")).status_code == 200
    # The password reset finds the old account by its address too.
    from allauth.account.models import EmailAddress

    address = EmailAddress.objects.get(user=user)
    assert (address.email, address.primary, address.verified) == (
        "oldtimer@example.com",
        True,
        False,
    )


@pytest.fixture
def personas_after_migration():
    from conversations.starter import ensure_starter_personas

    return ensure_starter_personas
