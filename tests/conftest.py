"""Fixtures shared by the whole suite: people and personas."""

from __future__ import annotations

import os

import pytest

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
