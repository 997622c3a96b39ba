"""Quotas: tokens per day and per month, for a user or a group, set in the admin and checked
against the usage ledger before each model call. A refusal names the quota, its size and when
it resets, and stores nothing; the settings panel shows what is left. The per-minute and
concurrency limits stay as they were."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from conversations import compare, services
from conversations.errors import ChatError
from conversations.models import Conversation, Message, ModelCall, Quota, Role, Status
from tests.conversations.chat_client import ChatSocket, saved

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """The sentences are checked in English, whatever an earlier test left active."""
    with translation.override("en"):
        yield


def spent(user, tokens, *, at=None):
    """A call of `user` that used `tokens` (as the ledger records a finished one)."""
    return ModelCall.objects.create(
        user=user,
        started_at=at or timezone.now(),
        model="gpt-4o-mini",
        prompt_tokens=tokens,
        completion_tokens=0,
        status=Status.COMPLETE,
    )


def post(user, conversation, text="Hello"):
    return services.post_message(
        user=user, conversation_id=conversation.pk, content=text, client_id=text
    )


@pytest.fixture
def conversation(owner, personas):
    return services.start_conversation(user=owner)


def test_a_call_past_the_daily_quota_is_refused_with_its_size_and_reset(owner, conversation):
    Quota.objects.create(user=owner, tokens_per_day=1000)
    spent(owner, 1000)
    calls = ModelCall.objects.count()
    with pytest.raises(ChatError) as refused:
        post(owner, conversation)
    day_reset, _month_reset = services.next_resets()
    assert refused.value.code == "quota_exceeded"
    assert refused.value.message == (
        "You have used your daily quota of 1,000 tokens. "
        f"It resets at {services.reset_text(day_reset)}."
    )
    assert "midnight (UTC)" in refused.value.message
    assert not conversation.messages.exists() and ModelCall.objects.count() == calls


def test_under_the_quota_a_message_goes_through(owner, conversation):
    Quota.objects.create(user=owner, tokens_per_day=1000, tokens_per_month=5000)
    spent(owner, 999)
    assert post(owner, conversation).is_new


def test_the_daily_quota_counts_only_today_and_the_monthly_one_the_whole_month(owner, conversation):
    quota = Quota.objects.create(user=owner, tokens_per_day=1000)
    day_start, month_start = services.period_starts()
    spent(owner, 5000, at=day_start - timedelta(seconds=1))  # yesterday
    assert post(owner, conversation, "one").is_new

    quota.tokens_per_day, quota.tokens_per_month = None, 5000
    quota.save()  # as the admin's form does
    spent(owner, 5000, at=month_start)
    with pytest.raises(ChatError) as refused:
        post(owner, services.start_conversation(user=owner), "two")
    _day_reset, month_reset = services.next_resets()
    assert refused.value.message == (
        "You have used your monthly quota of 5,000 tokens. "
        f"It resets at {services.reset_text(month_reset)}."
    )
    assert month_reset.day == 1 and (month_reset.hour, month_reset.minute) == (0, 0)


def test_the_quotas_reset_at_midnight_and_on_the_first_in_the_servers_time_zone(settings):
    settings.TIME_ZONE = "Asia/Seoul"
    day_reset, month_reset = services.next_resets()
    for reset in (day_reset, month_reset):
        assert str(reset.tzinfo) == "Asia/Seoul" and (reset.hour, reset.minute) == (0, 0)
    assert month_reset.day == 1 and day_reset > timezone.now() and month_reset >= day_reset
    assert services.reset_text(day_reset).endswith("midnight (KST)")


def test_a_group_quota_applies_to_its_members_and_a_users_own_replaces_it(
    owner, outsider, conversation
):
    team = Group.objects.create(name="interns")
    owner.groups.add(team)
    Quota.objects.create(group=team, tokens_per_day=100)
    spent(owner, 150)
    spent(outsider, 150)
    with pytest.raises(ChatError) as refused:
        post(owner, conversation, "one")
    assert "daily quota of 100 tokens" in refused.value.message
    # Not in the group: no quota.
    assert post(outsider, services.start_conversation(user=outsider), "two").is_new
    # The most generous of the user's groups applies.
    seniors = Group.objects.create(name="seniors")
    owner.groups.add(seniors)
    Quota.objects.create(group=seniors, tokens_per_day=200)
    assert post(owner, conversation, "three").is_new
    # A user's own quota replaces their groups'.
    Quota.objects.create(user=owner, tokens_per_day=50)
    spent(owner, 0)
    with pytest.raises(ChatError) as refused:
        post(owner, services.start_conversation(user=owner), "four")
    assert "daily quota of 50 tokens" in refused.value.message


def test_regenerating_editing_and_continuing_are_refused_past_the_quota(owner, conversation):
    Message.objects.create(conversation=conversation, role=Role.USER, content="Q")
    Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, content="A", status=Status.TRUNCATED
    )
    Quota.objects.create(user=owner, tokens_per_day=10)
    spent(owner, 10)
    before = list(conversation.messages.values_list("pk", "content"))
    for action in (services.regenerate, services.continue_reply):
        with pytest.raises(ChatError) as refused:
            action(user=owner, conversation_id=conversation.pk, client_id=action.__name__)
        assert refused.value.code == "quota_exceeded"
    question = conversation.messages.get(role=Role.USER)
    with pytest.raises(ChatError) as refused:
        services.edit_message(
            user=owner,
            conversation_id=conversation.pk,
            message_id=question.pk,
            content="Q2",
            client_id="edit",
        )
    assert refused.value.code == "quota_exceeded"
    assert list(conversation.messages.values_list("pk", "content")) == before


def test_the_per_minute_limit_stays(owner, conversation, settings):
    settings.CHAT_MESSAGES_PER_MINUTE = 1
    Quota.objects.create(user=owner, tokens_per_day=1_000_000)
    spent(owner, 1)
    with pytest.raises(ChatError) as refused:
        post(owner, conversation)
    assert refused.value.code == "rate_limited"


def test_the_ledger_is_summed_only_for_a_user_a_quota_limits(owner, make_user):
    """One query with the sums and the quotas as subqueries beside them cost the ORM 3.5 ms to
    build on every message; plain reads cost 0.9 ms for a user with no quota. A user's used
    tokens count only against a limit: they are summed only when one applies."""
    free = make_user("free")
    team = Group.objects.create(name="team")
    owner.groups.add(team)
    Quota.objects.create(group=team, tokens_per_day=10_000)
    spent(owner, 2500)
    spent(free, 700)
    services.ReplyStates.of_users({free.pk})  # the process reads the quotas once
    with CaptureQueriesContext(connection) as unlimited:
        states = services.ReplyStates.of_users({free.pk})
    # The streaming replies, the calls of the last minute (the quotas are held: `snapshots`).
    assert len(unlimited) == 2
    assert states.quotas[free.pk] == services.QuotaState(0, 0, None, None)
    with CaptureQueriesContext(connection) as limited:
        states = services.ReplyStates.of_users({owner.pk, free.pk})
    assert len(limited) == 3  # and the limited user's tokens of the day and the month
    assert states.quotas[owner.pk] == services.QuotaState(2500, 2500, 10_000, None)
    assert states.recent[owner.pk] == 1 and states.recent[free.pk] == 1
    # A group with no daily limit lifts the day's: the most generous of the groups applies.
    lifted = Group.objects.create(name="no daily limit")
    owner.groups.add(lifted)
    Quota.objects.create(group=lifted, tokens_per_month=5000)
    states = services.ReplyStates.of_users({owner.pk})
    assert states.quotas[owner.pk] == services.QuotaState(0, 0, None, None)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("isolated_channel_layer")
async def test_the_socket_refuses_a_message_past_the_quota_and_stores_nothing(
    owner, conversation, model_server
):
    @database_sync_to_async
    def over_quota():
        Quota.objects.create(user=owner, tokens_per_day=2000)
        spent(owner, 2500)

    await over_quota()
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Hello")
        error = await socket.until("error")
        assert await socket.communicator.receive_nothing(0.3)
    with translation.override("en"):  # the socket's language: none asked for
        reset = services.reset_text(services.next_resets()[0])
    assert error["code"] == "quota_exceeded"
    assert error["message"] == (
        f"You have used your daily quota of 2,000 tokens. It resets at {reset}."
    )
    assert await saved(conversation) == []
    assert model_server.config.requests == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("isolated_channel_layer")
async def test_a_compare_past_the_quota_is_refused_and_makes_nothing(owner, personas, model_server):
    @database_sync_to_async
    def setup():
        Quota.objects.create(user=owner, tokens_per_month=300)
        spent(owner, 300)
        return list(Conversation.objects.values_list("pk", flat=True)), ModelCall.objects.count()

    conversations, calls = await setup()
    targets = [compare.Target(p) for p in personas[:2]]
    with pytest.raises(ChatError) as refused, translation.override("en"):
        await compare.start_compare(user=owner, prompt="Hi", targets=targets)
    assert refused.value.code == "quota_exceeded"
    assert "monthly quota of 300 tokens" in refused.value.message

    @database_sync_to_async
    def after():
        return list(Conversation.objects.values_list("pk", flat=True)), ModelCall.objects.count()

    assert await after() == (conversations, calls)
    assert model_server.config.requests == []


def test_the_settings_panel_shows_what_is_left(client, owner, conversation):
    Quota.objects.create(user=owner, tokens_per_day=10_000, tokens_per_month=200_000)
    spent(owner, 1234)
    client.force_login(owner)
    html = client.get(reverse("conversation", args=[conversation.pk])).content.decode()
    day_reset, month_reset = services.next_resets()
    assert "Your quota" in html
    assert (
        f"Today: 8,766 of 10,000 tokens left (resets at {services.reset_text(day_reset)})." in html
    )
    assert (
        "This month: 198,766 of 200,000 tokens left "
        f"(resets at {services.reset_text(month_reset)})." in html
    )
    korean = client.get(
        reverse("conversation", args=[conversation.pk]), HTTP_ACCEPT_LANGUAGE="ko"
    ).content.decode()
    assert "오늘: 10,000 토큰 중 8,766 토큰 남음" in korean


def test_without_a_quota_the_panel_shows_none(client, owner, conversation):
    client.force_login(owner)
    html = client.get(reverse("conversation", args=[conversation.pk])).content.decode()
    assert "Your quota" not in html and 'id="quota-left"' not in html


def test_quotas_are_set_in_the_admin(client, owner, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(admin)
    response = client.post(
        reverse("admin:conversations_quota_add"),
        {"user": owner.pk, "group": "", "tokens_per_day": "5000", "tokens_per_month": ""},
    )
    assert response.status_code == 302
    quota = Quota.objects.get(user=owner)
    assert (quota.tokens_per_day, quota.tokens_per_month) == (5000, None)
    both = client.post(
        reverse("admin:conversations_quota_add"),
        {"user": admin.pk, "group": Group.objects.create(name="g").pk, "tokens_per_day": "1"},
    )
    assert both.status_code == 200 and "not both" in both.content.decode()
    assert client.get(reverse("admin:conversations_quota_changelist")).status_code == 200
