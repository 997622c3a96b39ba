"""Every admin page for our models loads for a superuser, and the persona tools work."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversations import services
from conversations.models import ChatModel, Message, ModelCall, Persona, Role, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(admin)
    return client


@pytest.fixture
def conversation(owner, personas):
    conversation = services.start_conversation(user=owner)
    conversation.title = "Pasta tonight"
    conversation.save()
    Message.objects.create(conversation=conversation, role=Role.USER, content="carbonara?")
    Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, content="Eggs.", status=Status.COMPLETE
    )
    return conversation


def test_the_persona_list_shows_the_four_starter_personas(admin_client, personas):
    response = admin_client.get(reverse("admin:conversations_persona_changelist"))
    assert response.status_code == 200
    assert response.context["cl"].result_count == 4
    for name in ["심리 상담사", "셰프", "헬스 트레이너"]:
        assert name in response.content.decode()


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:conversations_persona_changelist",
        "admin:conversations_persona_add",
        "admin:conversations_conversation_changelist",
    ],
)
def test_list_and_add_pages_load(admin_client, personas, conversation, url_name):
    assert admin_client.get(reverse(url_name)).status_code == 200


def test_the_persona_change_page_loads(admin_client, default_persona):
    url = reverse("admin:conversations_persona_change", args=[default_persona.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert "incoherent" in response.content.decode()


def test_the_conversation_page_shows_its_messages_read_only(admin_client, conversation):
    url = reverse("admin:conversations_conversation_change", args=[conversation.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert "carbonara?" in response.content.decode()
    assert not response.context["has_change_permission"]


def test_conversations_are_searchable_by_message_text(admin_client, conversation):
    url = reverse("admin:conversations_conversation_changelist")
    found = admin_client.get(url, {"q": "carbonara"})
    assert list(found.context["cl"].result_list) == [conversation]
    assert admin_client.get(url, {"q": "owner"}).context["cl"].result_count == 1
    assert admin_client.get(url, {"q": "nothing-like-it"}).context["cl"].result_count == 0


def test_conversations_are_filterable_by_persona(admin_client, conversation):
    url = reverse("admin:conversations_conversation_changelist")
    response = admin_client.get(url, {"persona__id__exact": conversation.persona_id})
    assert response.context["cl"].result_count == 1


def test_the_duplicate_action_copies_a_persona_without_the_default(admin_client, personas):
    chef = Persona.objects.get(name="셰프")
    response = admin_client.post(
        reverse("admin:conversations_persona_changelist"),
        {"action": "duplicate", "_selected_action": [chef.pk]},
    )
    assert response.status_code == 302
    copy = Persona.objects.get(name__startswith="셰프 (")
    assert copy.system_prompt == chef.system_prompt
    assert not copy.is_default


def test_active_and_position_are_editable_in_the_list(admin_client, personas):
    admin_view = admin_client.get(reverse("admin:conversations_persona_changelist"))
    assert admin_view.context["cl"].list_editable == ["is_active", "position"]


def test_the_admin_accepts_json_mode_without_json_in_the_prompt(admin_client, personas):
    response = admin_client.post(
        reverse("admin:conversations_persona_add"),
        {
            "name": "Strict",
            "system_prompt": "Answer briefly.",
            "temperature": "0.3",
            "response_format": "json_object",
            "top_logprobs": "0",
            "position": "0",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    assert Persona.objects.get(name="Strict").response_format == "json_object"


def test_the_model_field_is_a_select_of_the_model_list_without_asking_the_server(
    admin_client, default_persona, model_server
):
    ChatModel.objects.create(name="sim-1", label="Simulator")
    url = reverse("admin:conversations_persona_change", args=[default_persona.pk])
    page = admin_client.get(url).content.decode()
    assert '<select name="model"' in page
    assert '<option value="sim-1">Simulator</option>' in page
    # Nothing is fetched on a page view: the list is refreshed by its own button.
    assert model_server.config.request_count == 0


def test_the_model_field_stays_free_text_while_the_list_is_empty(admin_client, default_persona):
    url = reverse("admin:conversations_persona_change", args=[default_persona.pk])
    page = admin_client.get(url).content.decode()
    assert '<input type="text" name="model"' in page


def test_the_usage_ledger_names_how_each_call_ended_in_the_admins_language(
    admin_client, owner, conversation
):
    ModelCall.objects.create(user=owner, model="gpt-4o-mini", status=Status.INTERRUPTED)
    url = reverse("admin:conversations_modelcall_changelist")
    english = admin_client.get(url, headers={"accept-language": "en"}).content.decode()
    assert '<td class="field-status">Interrupted</td>' in english
    korean = admin_client.get(url, headers={"accept-language": "ko"}).content.decode()
    assert '<td class="field-status">중단됨</td>' in korean


def test_the_persona_form_says_which_language_each_text_is_shown_in(admin_client):
    url = reverse("admin:conversations_persona_add")
    english = admin_client.get(url, headers={"accept-language": "en"}).content.decode()
    assert "Shown in every language, unless the English name replaces it in English." in english
    assert "unless the Korean description replaces it in Korean." in english
    korean = admin_client.get(url, headers={"accept-language": "ko"}).content.decode()
    assert "영어 이름을 채우면 영어 사용자에게는 그것이 대신 보입니다." in korean
    assert "각 항목은 모든 언어에서 보입니다." in korean


def test_the_persona_forms_max_tokens_box_offers_no_zero(admin_client):
    html = admin_client.get(reverse("admin:conversations_persona_add")).content.decode()
    start = html.index('name="max_completion_tokens"')
    tag = html[html.rindex("<input", 0, start) : html.index(">", start)]
    assert 'min="1"' in tag
