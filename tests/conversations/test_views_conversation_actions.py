"""Rename, pin, delete, settings and reset: the owner may, another user gets 404, a stranger is
sent to log in."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversations import services
from conversations.models import Conversation, Message, ResponseFormat, Role
from tests.paths import bulk_append

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(owner, personas):
    return services.start_conversation(user=owner)


def post(client, name, conversation, data=None):
    return client.post(reverse(name, args=[conversation.pk]), data or {})


def test_the_owner_renames_a_conversation(client, owner, conversation):
    client.force_login(owner)
    response = post(client, "rename_conversation", conversation, {"title": "  Trip   plans "})
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.title == "Trip plans"


def test_rename_goes_back_to_a_safe_next_only(client, owner, conversation):
    client.force_login(owner)
    response = post(
        client, "rename_conversation", conversation, {"title": "x", "next": "https://evil.test/"}
    )
    assert response.url == reverse("conversation", args=[conversation.pk])
    response = post(client, "rename_conversation", conversation, {"title": "x", "next": "/?q=a"})
    assert response.url == "/?q=a"


def test_an_empty_title_is_refused(client, owner, conversation):
    client.force_login(owner)
    post(client, "rename_conversation", conversation, {"title": ""})
    conversation.refresh_from_db()
    assert conversation.title == ""


def test_the_owner_pins_and_unpins(client, owner, conversation):
    client.force_login(owner)
    post(client, "pin_conversation", conversation, {"pinned": "on"})
    conversation.refresh_from_db()
    assert conversation.pinned
    post(client, "pin_conversation", conversation, {})
    conversation.refresh_from_db()
    assert not conversation.pinned


def test_delete_asks_first_then_deletes(client, owner, conversation):
    client.force_login(owner)
    url = reverse("delete_conversation", args=[conversation.pk])
    response = client.get(url, headers={"accept-language": "en"})
    assert response.status_code == 200
    assert b"This cannot be undone." in response.content
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    response = client.post(url)
    assert response.status_code == 302
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("rename_conversation", {"title": "stolen"}),
        ("pin_conversation", {"pinned": "on"}),
        ("delete_conversation", {}),
        ("conversation_settings", {"temperature": "1.5", "top_logprobs": "0"}),
    ],
)
def test_another_user_gets_404_and_changes_nothing(client, outsider, conversation, name, data):
    client.force_login(outsider)
    before = Conversation.objects.values().get(pk=conversation.pk)
    assert post(client, name, conversation, data).status_code == 404
    assert Conversation.objects.values().get(pk=conversation.pk) == before


@pytest.mark.parametrize(
    "name",
    ["rename_conversation", "pin_conversation", "delete_conversation", "conversation_settings"],
)
def test_a_stranger_is_sent_to_log_in(client, conversation, name):
    response = post(client, name, conversation, {"title": "x"})
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert Conversation.objects.filter(pk=conversation.pk, title="").exists()


def settings_data(**overrides):
    data = {
        "system_prompt": "Be brief.",
        "temperature": "0.3",
        "max_completion_tokens": "200",
        "top_logprobs": "0",
    }
    data.update(overrides)
    return data


def test_the_owner_saves_settings(client, owner, conversation):
    client.force_login(owner)
    data = settings_data(logprobs="on", top_logprobs="3")
    response = post(client, "conversation_settings", conversation, data)
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Be brief."
    assert conversation.temperature == 0.3
    assert conversation.max_completion_tokens == 200
    assert conversation.logprobs is True
    assert conversation.top_logprobs == 3
    assert conversation.response_format == ResponseFormat.TEXT


def test_json_mode_is_saved_without_the_word_json_in_the_system_prompt(client, owner, conversation):
    # The app adds the instruction itself (`llm.ensure_json_instruction`).
    client.force_login(owner)
    response = post(client, "conversation_settings", conversation, settings_data(json_mode="on"))
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.response_format == ResponseFormat.JSON_OBJECT
    assert conversation.system_prompt == "Be brief."


def test_a_temperature_outside_0_to_2_is_refused(client, owner, conversation):
    client.force_login(owner)
    response = post(client, "conversation_settings", conversation, settings_data(temperature="3"))
    assert response.status_code == 400
    conversation.refresh_from_db()
    assert conversation.temperature != 3


def test_reset_starts_a_new_conversation_with_the_same_settings(client, owner, conversation):
    Message.objects.create(conversation=conversation, role=Role.USER, content="Hello")
    client.force_login(owner)
    post(client, "conversation_settings", conversation, settings_data(temperature="1.7"))
    conversation.refresh_from_db()
    response = client.post(reverse("new_conversation"), {"copy_from": str(conversation.pk)})
    fresh = Conversation.objects.exclude(pk=conversation.pk).get()
    assert response.url == reverse("conversation", args=[fresh.pk])
    assert fresh.settings_dict() == conversation.settings_dict()
    assert fresh.persona == conversation.persona
    assert not fresh.messages.exists()


def test_reset_from_someone_elses_conversation_is_404(client, outsider, conversation):
    client.force_login(outsider)
    response = client.post(reverse("new_conversation"), {"copy_from": str(conversation.pk)})
    assert response.status_code == 404
    assert not Conversation.objects.filter(user=outsider).exists()


def test_a_first_message_from_the_new_chat_page_is_handed_to_the_conversation_page(
    client, owner, personas
):
    client.force_login(owner)
    chef = next(p for p in personas if p.name_en == "Chef")
    response = client.post(
        reverse("new_conversation"), {"persona": chef.pk, "message": "Pasta tonight?"}
    )
    conversation = Conversation.objects.get(user=owner)
    assert conversation.persona == chef
    page = client.get(response.url)
    assert page.context["chat_config"]["pending"]["content"] == "Pasta tonight?"
    # Handed over once: a reload does not send it again.
    assert client.get(response.url).context["chat_config"]["pending"] is None


def test_the_new_chat_page_lists_personas_in_the_users_language(client, owner, personas):
    client.force_login(owner)
    content = client.get(reverse("new_conversation"), headers={"accept-language": "ko"}).content
    text = content.decode()
    assert "도우미" in text and "일상적인 질문을 돕는 친절한 범용 도우미." in text
    assert 'aria-label="대화 목록"' in text
    content = client.get(reverse("new_conversation"), headers={"accept-language": "en"}).content
    assert "A helpful general assistant for everyday questions." in content.decode()


def test_search_finds_titles_and_message_text_of_ones_own_conversations(
    client, owner, outsider, personas
):
    titled = services.start_conversation(user=owner)
    services.rename_conversation(user=owner, conversation_id=titled.pk, title="Holiday plans")
    texted = services.start_conversation(user=owner)
    Message.objects.create(conversation=texted, role=Role.USER, content="my holiday budget")
    services.start_conversation(user=owner)
    theirs = services.start_conversation(user=outsider)
    services.rename_conversation(user=outsider, conversation_id=theirs.pk, title="holiday")
    client.force_login(owner)
    response = client.get(reverse("conversation_list"), {"q": "HOLIDAY"})
    assert [c.pk for c in response.context["conversations"]] == [texted.pk, titled.pk]


def test_the_sidebar_puts_pinned_first_then_groups_by_day(client, owner, personas):
    from datetime import timedelta

    from django.utils import timezone

    old = services.start_conversation(user=owner)
    Conversation.objects.filter(pk=old.pk).update(
        updated_at=timezone.now() - timedelta(days=40), title="Old one"
    )
    yesterday = services.start_conversation(user=owner)
    Conversation.objects.filter(pk=yesterday.pk).update(
        updated_at=timezone.now() - timedelta(days=1), title="Yesterday's"
    )
    pinned = services.start_conversation(user=owner)
    Conversation.objects.filter(pk=pinned.pk).update(
        updated_at=timezone.now() - timedelta(days=3), pinned=True
    )
    today = services.start_conversation(user=owner)
    client.force_login(owner)
    response = client.get(
        reverse("conversation", args=[today.pk]), headers={"accept-language": "en"}
    )
    groups = [
        (g.label, [c.pk for c in g.conversations]) for g in response.context["conversation_groups"]
    ]
    assert groups[:3] == [
        ("Pinned", [pinned.pk]),
        ("Today", [today.pk]),
        ("Yesterday", [yesterday.pk]),
    ]
    assert groups[3][1] == [old.pk]


def test_older_messages_come_in_pages_marked_for_the_context_window(client, owner, personas):
    conversation = services.start_conversation(user=owner)
    bulk_append(
        Message(conversation=conversation, role=Role.USER, content=f"m{i}") for i in range(120)
    )
    ids = list(conversation.messages.values_list("id", flat=True))
    client.force_login(owner)
    url = reverse("older_messages", args=[conversation.pk])
    data = client.get(url, {"before": ids[70], "context_from": ids[60]}).json()
    assert data["has_older"] is True
    assert data["html"].count('class="message"') == 50
    assert f'data-id="{ids[20]}"' in data["html"] and f'data-id="{ids[19]}"' not in data["html"]
    assert data["html"].count('data-context="excluded"') == 40
    assert client.get(url, {"before": "x"}).status_code == 400


def test_older_messages_of_someone_elses_conversation_are_404(client, outsider, personas, owner):
    conversation = services.start_conversation(user=owner)
    client.force_login(outsider)
    url = reverse("older_messages", args=[conversation.pk])
    assert client.get(url, {"before": 10}).status_code == 404


def test_the_page_marks_messages_the_latest_reply_did_not_see(client, owner, personas):
    conversation = services.start_conversation(user=owner)
    early = Message.objects.create(conversation=conversation, role=Role.USER, content="early")
    seen = Message.objects.create(conversation=conversation, role=Role.USER, content="seen")
    Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, content="ok", context_from_id=seen.pk
    )
    client.force_login(owner)
    response = client.get(reverse("conversation", args=[conversation.pk]))
    marked = {m.pk: m.excluded for m in response.context["chat_messages"]}
    assert marked[early.pk] is True
    assert marked[seen.pk] is False


def test_a_reply_left_streaming_by_a_dead_process_shows_as_interrupted(client, owner, personas):
    conversation = services.start_conversation(user=owner)
    Message.objects.create(conversation=conversation, role=Role.USER, content="hi")
    reply = Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, content="half", status="streaming"
    )
    client.force_login(owner)
    response = client.get(reverse("conversation", args=[conversation.pk]))
    assert b'data-status="interrupted"' in response.content
    reply.refresh_from_db()
    assert reply.status == "interrupted"
