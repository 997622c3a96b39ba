"""`python manage.py sync_models` fills the admin's model list from the server's /v1/models,
over real HTTP with the real SDK, and keeps what the admin set."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, ManagementUtility, call_command

from conversations import catalog
from conversations.models import ChatModel

pytestmark = pytest.mark.django_db


def sync() -> str:
    out = io.StringIO()
    call_command("sync_models", stdout=out)
    return out.getvalue()


def test_the_servers_models_are_added_enabled_and_listed(model_server):
    output = sync()

    names = set(ChatModel.objects.values_list("name", flat=True))
    assert names == set(model_server.config.models)
    assert all(m.is_enabled and m.listed and m.synced_at for m in ChatModel.objects.all())
    assert "sim-vision" in output


def test_the_card_says_which_model_reads_images(model_server):
    sync()

    assert ChatModel.objects.get(name="sim-vision").accepts_images
    assert not ChatModel.objects.get(name="sim-1").accepts_images
    # The card says text only: the name's guess does not override it.
    assert not ChatModel.objects.get(name="gpt-4o").accepts_images


def test_a_server_that_sends_only_ids_gets_a_guess_by_name(model_server):
    model_server.config.describe_models = False

    sync()

    assert ChatModel.objects.get(name="gpt-4o").accepts_images
    assert not ChatModel.objects.get(name="sim-1").accepts_images
    assert ChatModel.objects.get(name="sim-vision").accepts_images  # "vision" in its name


def test_models_that_do_not_chat_are_added_switched_off(model_server):
    model_server.config.models = ["gpt-4o-mini", "text-embedding-3-small", "whisper-1"]

    sync()

    assert list(ChatModel.objects.usable().values_list("name", flat=True)) == ["gpt-4o-mini"]
    assert ChatModel.objects.filter(name="whisper-1", is_enabled=False).exists()


def test_a_model_the_server_stops_listing_is_kept_but_no_longer_usable(model_server):
    sync()
    model_server.config.models = ["sim-1", "llama3.2"]

    output = sync()

    assert not ChatModel.objects.get(name="gpt-4o").listed
    assert ChatModel.objects.get(name="llama3.2").listed
    assert set(ChatModel.objects.usable().values_list("name", flat=True)) == {"sim-1", "llama3.2"}
    assert "llama3.2" in output and "gpt-4o" in output


def test_a_model_listed_again_is_usable_again(model_server):
    sync()
    model_server.config.models = ["sim-1"]
    sync()
    model_server.config.models = ["sim-1", "gpt-4o"]

    sync()

    assert ChatModel.objects.usable().filter(name="gpt-4o").exists()


def test_what_the_admin_set_is_never_overwritten(model_server):
    sync()
    ChatModel.objects.filter(name="sim-1").update(
        label="Fast", is_enabled=False, context_window=4096, accepts_images=True, position=3
    )

    sync()

    model = ChatModel.objects.get(name="sim-1")
    assert (model.label, model.is_enabled, model.context_window) == ("Fast", False, 4096)
    assert model.accepts_images and model.position == 3


def test_a_refused_key_fails_with_a_sentence_and_changes_nothing(model_server):
    sync()
    model_server.config.api_key = "sk-another-key"
    model_server.config.models = ["sim-1"]

    with pytest.raises(CommandError) as caught:
        sync()

    assert "refused the API key" in str(caught.value)
    assert "sk-test-not-a-real-key" not in str(caught.value)
    assert ChatModel.objects.filter(listed=True).count() == 5


def test_a_server_that_is_not_there_fails_with_a_sentence(model_server, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens there

    with pytest.raises(CommandError) as caught:
        sync()

    assert "could not be reached" in str(caught.value)
    assert not ChatModel.objects.exists()


def test_the_command_exits_non_zero_with_the_sentence(model_server, settings, capsys):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"

    with pytest.raises(SystemExit) as caught:
        ManagementUtility(["manage.py", "sync_models"]).execute()

    assert caught.value.code != 0
    assert "The model list was not refreshed" in capsys.readouterr().err


def test_the_offline_demo_model_lists_its_models(settings):
    settings.DEMO_MODE = True

    sync()

    assert ChatModel.objects.filter(name="sim-vision", accepts_images=True).exists()


@pytest.mark.parametrize(
    ("card", "window"),
    [
        ({"id": "m", "context_length": 32768}, 32768),  # OpenRouter, LM Studio
        ({"id": "m", "max_model_len": 8192}, 8192),  # vLLM
        ({"id": "m"}, None),
        ({"id": "m", "context_length": "big"}, None),
    ],
)
def test_a_context_window_on_the_card_is_taken_when_the_model_is_new(card, window):
    assert catalog._new_model(card, None).context_window == window


def test_a_default_model_the_server_does_not_list_is_pointed_out(model_server, settings):
    settings.OPENAI_MODEL = "llama3.1"

    output = sync()

    assert "The default model “llama3.1” (OPENAI_MODEL) is not among them" in output


def test_a_listed_default_model_is_not_mentioned(model_server):
    assert "OPENAI_MODEL" not in sync()
