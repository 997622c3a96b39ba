"""Each persona offers a few example prompts on the new-chat page, in the user's language:
written in the admin, one per line, and given to the starter personas by a data migration."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.urls import reverse

from conversations.models import Persona

pytestmark = pytest.mark.django_db


def test_a_persona_offers_at_most_four_example_prompts_in_the_users_language():
    persona = Persona(
        name="x",
        example_prompts="One\n\n  Two  words \nThree\nFour\nFive",
        example_prompts_ko="하나\n둘",
    )
    assert persona.display_example_prompts("en") == ["One", "Two words", "Three", "Four"]
    assert persona.display_example_prompts("ko") == ["하나", "둘"]
    persona.example_prompts_ko = " \n"
    assert persona.display_example_prompts("ko")[0] == "One"


def test_every_starter_persona_has_examples_in_english_and_korean(personas):
    for persona in personas:
        english = persona.display_example_prompts("en")
        korean = persona.display_example_prompts("ko")
        assert 2 <= len(english) <= 4 and len(korean) == len(english)
        assert all(prompt.isascii() for prompt in english)
        assert not any(prompt.isascii() for prompt in korean)


def test_the_migration_gives_existing_starter_personas_examples_and_keeps_an_admins(personas):
    migration = importlib.import_module("conversations.migrations.0006_persona_example_prompts")
    Persona.objects.update(example_prompts="", example_prompts_ko="")
    Persona.objects.filter(name_en="Chef").update(example_prompts="My own")
    # An installation whose admin never gave the trainer an English name.
    Persona.objects.filter(name_en="Fitness trainer").update(name_en="")
    migration.give_starter_personas_examples(apps, None)
    chef = Persona.objects.get(name_en="Chef")
    assert chef.example_prompts == "My own"
    assert "김치볶음밥" in chef.example_prompts_ko
    trainer = Persona.objects.get(name="헬스 트레이너")
    assert "squat" in trainer.example_prompts
    assert Persona.objects.exclude(example_prompts="").count() == 4


def test_the_admin_edits_the_example_prompts(client, django_user_model, personas):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-1")
    client.force_login(admin)
    chef = Persona.objects.get(name_en="Chef")
    page = client.get(reverse("admin:conversations_persona_change", args=[chef.pk]))
    assert b'name="example_prompts"' in page.content
    assert b'name="example_prompts_ko"' in page.content


def test_the_new_chat_page_offers_the_chosen_personas_examples_in_korean(client, owner, personas):
    client.force_login(owner)
    text = client.get(reverse("new_conversation"), headers={"accept-language": "ko"}).content
    text = text.decode()
    assert "간단한 김치볶음밥 레시피 알려 줘" in text
    assert "Give me a simple recipe for kimchi fried rice" not in text
    english = client.get(reverse("new_conversation"), headers={"accept-language": "en"})
    assert "Give me a simple recipe for kimchi fried rice" in english.content.decode()
