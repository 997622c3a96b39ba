from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from conversations.models import Persona, ResponseFormat

pytestmark = pytest.mark.django_db


def make_persona(**fields) -> Persona:
    values = {"name": "Tester", "system_prompt": "You test things.", **fields}
    return Persona.objects.create(**values)


def test_the_database_refuses_a_second_default(personas):
    other = Persona.objects.exclude(is_default=True).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        # Written around the model's save(): only the database constraint stands in the way.
        Persona.objects.filter(pk=other.pk).update(is_default=True)


def test_making_a_persona_default_hands_the_default_over(personas, default_persona):
    chef = Persona.objects.get(name="셰프")
    chef.is_default = True
    chef.save()
    assert list(Persona.objects.filter(is_default=True)) == [chef]
    default_persona.refresh_from_db()
    assert not default_persona.is_default


def test_the_first_persona_becomes_the_default():
    persona = make_persona()
    assert persona.is_default


def test_the_default_persona_cannot_be_deleted(default_persona):
    with pytest.raises(ValidationError):
        default_persona.delete()
    assert Persona.objects.filter(pk=default_persona.pk).exists()


def test_the_default_cannot_simply_be_unset(default_persona):
    default_persona.is_default = False
    with pytest.raises(ValidationError) as caught:
        default_persona.full_clean()
    assert "is_default" in caught.value.message_dict


def test_the_database_refuses_an_inactive_default(default_persona):
    with pytest.raises(IntegrityError), transaction.atomic():
        Persona.objects.filter(pk=default_persona.pk).update(is_active=False)


@pytest.mark.parametrize("temperature", [-0.1, 2.01, 5])
def test_temperature_outside_0_to_2_is_rejected(temperature):
    persona = Persona(name="Hot", temperature=temperature)
    with pytest.raises(ValidationError) as caught:
        persona.full_clean()
    assert "temperature" in caught.value.message_dict


def test_the_database_refuses_a_temperature_above_2(personas):
    with pytest.raises(IntegrityError), transaction.atomic():
        Persona.objects.filter(name="셰프").update(temperature=2.5)


@pytest.mark.parametrize("tokens", [0, 200_001])
def test_token_limits_outside_the_range_are_rejected(tokens):
    persona = Persona(name="Short", max_completion_tokens=tokens)
    with pytest.raises(ValidationError) as caught:
        persona.full_clean()
    assert "max_completion_tokens" in caught.value.message_dict


def test_top_logprobs_above_20_is_rejected():
    persona = Persona(name="Curious", logprobs=True, top_logprobs=21)
    with pytest.raises(ValidationError) as caught:
        persona.full_clean()
    assert "top_logprobs" in caught.value.message_dict


def test_json_mode_without_the_word_json_is_accepted():
    # The app adds the instruction itself (`llm.ensure_json_instruction`).
    persona = Persona(
        name="Structured",
        system_prompt="Answer with an object.",
        response_format=ResponseFormat.JSON_OBJECT,
    )
    persona.full_clean()


def test_json_mode_with_the_word_json_in_any_case_is_accepted():
    persona = Persona(
        name="Structured",
        system_prompt="Answer with a json object.",
        response_format=ResponseFormat.JSON_OBJECT,
    )
    persona.full_clean()


def test_persona_names_follow_the_language(personas):
    counselor = Persona.objects.get(name="심리 상담사")
    assert counselor.display_name("en") == "Counselor"
    assert counselor.display_name("ko") == "심리 상담사"
    assert counselor.display_description("ko").startswith("먼저")
