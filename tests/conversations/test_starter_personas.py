from __future__ import annotations

import pytest

from conversations.models import Persona
from conversations.starter import ensure_starter_personas

pytestmark = pytest.mark.django_db


def test_a_fresh_installation_gets_four_personas_with_one_default():
    ensure_starter_personas()
    names = set(Persona.objects.values_list("name", flat=True))
    assert {"심리 상담사", "셰프", "헬스 트레이너"} <= names
    assert Persona.objects.count() == 4
    assert Persona.objects.filter(is_default=True).count() == 1


def test_each_starter_persona_has_an_english_description_and_its_own_temperature():
    ensure_starter_personas()
    temperatures = {p.name: p.temperature for p in Persona.objects.all()}
    assert temperatures["셰프"] > temperatures["헬스 트레이너"]
    for persona in Persona.objects.all():
        assert persona.description.isascii()
        persona.full_clean()


def test_edits_and_deletions_of_the_starter_personas_stand():
    ensure_starter_personas()
    Persona.objects.filter(name="셰프").delete()
    Persona.objects.filter(name="헬스 트레이너").update(name="트레이너")
    assert ensure_starter_personas() == []
    assert not Persona.objects.filter(name__in=["셰프", "헬스 트레이너"]).exists()
