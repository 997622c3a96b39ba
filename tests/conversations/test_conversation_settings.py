from __future__ import annotations

import pytest

from conversations import services
from conversations.models import Persona

pytestmark = pytest.mark.django_db


def test_a_conversation_copies_its_personas_settings(owner, personas):
    chef = Persona.objects.get(name="셰프")
    conversation = services.start_conversation(user=owner, persona=chef)
    assert conversation.persona == chef
    assert conversation.settings_dict() == chef.settings_dict()


def test_a_conversation_keeps_its_settings_after_its_persona_changes(owner, personas):
    chef = Persona.objects.get(name="셰프")
    conversation = services.start_conversation(user=owner, persona=chef)
    before = conversation.settings_dict()

    chef.system_prompt = "You are a pirate."
    chef.temperature = 1.9
    chef.model = "another-model"
    chef.save()

    conversation.refresh_from_db()
    assert conversation.settings_dict() == before
    assert conversation.system_prompt != "You are a pirate."


def test_without_a_persona_a_conversation_starts_from_the_default(owner, default_persona):
    conversation = services.start_conversation(user=owner)
    assert conversation.persona == default_persona


def test_conversation_ids_are_not_guessable(owner, personas):
    first = services.start_conversation(user=owner)
    second = services.start_conversation(user=owner)
    assert first.pk.version == 4
    assert first.pk != second.pk
