"""The admin's small tables (context windows, quotas) are held by each process for a few
seconds instead of read by every message: a change saved in this process applies to the next
message, one saved by another process within `snapshots.FRESH_SECONDS`."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from conversations import catalog, services, snapshots
from conversations.errors import ChatError
from conversations.models import ChatModel, Quota

pytestmark = pytest.mark.django_db


def post(user, conversation, text):
    return services.post_message(
        user=user, conversation_id=conversation.pk, content=text, client_id=text
    )


@pytest.fixture
def conversation(owner, personas, model_server):
    return services.start_conversation(user=owner)


def test_a_message_reads_neither_table_while_the_process_holds_them(owner, conversation):
    post(owner, conversation, "first")
    services.end_replies(conversation.messages.filter(role="assistant"), status="complete")
    with CaptureQueriesContext(connection) as queries:
        post(owner, conversation, "second")
    tables = {"conversations_quota", "conversations_chatmodel", "auth_user_groups"}
    assert not [q["sql"] for q in queries if any(f'"{t}"' in q["sql"] for t in tables)]


def test_a_quota_saved_in_this_process_applies_to_the_next_message(owner, conversation):
    post(owner, conversation, "before")  # the quotas are held from here
    services.end_replies(conversation.messages.filter(role="assistant"), status="complete")
    Quota.objects.create(user=owner, tokens_per_day=0)
    with pytest.raises(ChatError) as refused:
        post(owner, conversation, "after")
    assert refused.value.code == "quota_exceeded"


def test_joining_a_group_with_a_quota_applies_to_the_next_message(owner, conversation):
    team = Group.objects.create(name="team")
    Quota.objects.create(group=team, tokens_per_day=0)
    post(owner, conversation, "before")  # not a member yet
    services.end_replies(conversation.messages.filter(role="assistant"), status="complete")
    owner.groups.add(team)
    with pytest.raises(ChatError) as refused:
        post(owner, conversation, "after")
    assert refused.value.code == "quota_exceeded"


def test_a_change_made_by_another_process_is_read_once_the_table_is_stale(
    conversation, monkeypatch
):
    model = conversation.effective_model
    ChatModel.objects.create(name=model, context_window=1_000)
    assert catalog.context_windows([model]) == {model: 1_000}
    # Another process's save: no signal reaches this one.
    ChatModel.objects.filter(name=model).update(context_window=2_000)
    assert catalog.context_windows([model]) == {model: 1_000}
    monkeypatch.setattr(snapshots, "FRESH_SECONDS", 0.0)  # the table held is stale now
    assert catalog.context_windows([model]) == {model: 2_000}


@pytest.mark.django_db(transaction=True)
def test_a_table_read_elsewhere_while_a_change_was_saved_is_read_again_once_committed(owner):
    snapshots.quotas.get()

    def read_from_another_thread():
        try:
            assert owner.pk not in snapshots.quotas.get().own  # not committed yet
        finally:
            connections.close_all()

    with transaction.atomic():
        Quota.objects.create(user=owner, tokens_per_day=0)
        reader = threading.Thread(target=read_from_another_thread)
        reader.start()
        reader.join()
    assert snapshots.quotas.get().own[owner.pk] == (0, None)
