"""Migration 0009: the usage ledger filled from the replies that existed before it, so no
figure changes on the day it arrives and none changes when those replies are deleted later."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("conversations", "0008_message_tree")]
AFTER = [("conversations", "0010_fill_usage_ledger")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.fixture
def before_the_ledger(transactional_db):
    apps = migrate(BEFORE)
    yield apps
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_existing_replies_give_their_calls_their_tokens(before_the_ledger):
    apps = before_the_ledger
    User = apps.get_model("auth", "User")
    Conversation = apps.get_model("conversations", "Conversation")
    Message = apps.get_model("conversations", "Message")
    ModelCall = apps.get_model("conversations", "ModelCall")
    user = User.objects.create(username="old")
    chat = Conversation.objects.create(user=user, title="Old chat")
    now = timezone.now()
    asked, answered = now - timedelta(hours=2), now - timedelta(hours=1)

    def reply(at, **values):
        return Message.objects.create(
            conversation=chat, role="assistant", content="ok", created_at=at, **values
        )

    # A call and its reply, written at the same moment as the app did.
    matched_call = ModelCall.objects.create(user=user, started_at=asked)
    reply(
        asked,
        model="gpt-4o-mini",
        status="complete",
        prompt_tokens=100,
        completion_tokens=20,
        completed_at=answered,
    )
    # A call whose reply was deleted (regenerated): its tokens are gone.
    lost_call = ModelCall.objects.create(user=user, started_at=now - timedelta(minutes=30))
    # A reply from before calls were recorded, stopped with an estimate.
    older = reply(
        now - timedelta(days=40),
        model="llama3",
        status="stopped",
        prompt_tokens=7,
        completion_tokens=3,
        usage_estimated=True,
    )
    # An imported reply: never spent here.
    reply(now, imported=True, prompt_tokens=9_000, completion_tokens=9_000)

    apps = migrate(AFTER)
    Message = apps.get_model("conversations", "Message")
    ModelCall = apps.get_model("conversations", "ModelCall")
    rows = {
        call.pk: (
            call.conversation_id,
            call.model,
            call.prompt_tokens,
            call.completion_tokens,
            call.estimated,
            call.status,
        )
        for call in ModelCall.objects.all()
    }
    assert len(rows) == 3, "one new row, for the reply older than the calls"
    assert rows[matched_call.pk] == (chat.pk, "gpt-4o-mini", 100, 20, False, "complete")
    assert ModelCall.objects.get(pk=matched_call.pk).ended_at == answered
    assert rows[lost_call.pk] == (None, "", None, None, False, "")
    new = Message.objects.get(pk=older.pk).model_call
    assert rows[new.pk] == (chat.pk, "llama3", 7, 3, True, "stopped")
    assert new.started_at == older.created_at and new.user_id == user.pk
    assert Message.objects.filter(imported=True, model_call__isnull=False).count() == 0
