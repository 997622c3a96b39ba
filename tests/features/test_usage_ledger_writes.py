"""The usage ledger against what else writes: an import writes no row and changes no figure,
and a sweep of a dead process's reply marks its row interrupted, with no tokens."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from conversations import exports, services, usage
from conversations.models import Message, ModelCall, Role, Status
from tests.features.test_usage_ledger import LEDGER_FIELDS

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(owner, personas):
    return services.start_conversation(user=owner)


def test_importing_writes_no_row_and_changes_no_figure(client, owner, personas):
    mine = services.start_conversation(user=owner)
    at = timezone.now()
    call = ModelCall.objects.create(
        user=owner,
        started_at=at,
        conversation_id=mine.pk,
        model="gpt-4o-mini",
        prompt_tokens=100,
        completion_tokens=20,
        status=Status.COMPLETE,
    )
    Message.objects.create(conversation=mine, role=Role.USER, content="Hi", created_at=at)
    Message.objects.create(
        conversation=mine,
        role=Role.ASSISTANT,
        content="Hello",
        prompt_tokens=100,
        completion_tokens=20,
        model_call=call,
        created_at=at,
    )
    document = json.loads(exports.export_json([mine]))
    # A file can say anything about its tokens.
    document["conversations"][0]["messages"][1]["usage"] = {
        "prompt_tokens": 900_000,
        "completion_tokens": 900_000,
    }
    before = list(ModelCall.objects.values_list(*LEDGER_FIELDS))
    today = timezone.localdate()
    daily_before = usage.daily_usage(since=today)

    client.force_login(owner)
    upload = SimpleUploadedFile("export.json", json.dumps(document).encode(), "application/json")
    response = client.post(reverse("import_conversations"), {"file": upload})

    copy = owner.conversations.exclude(pk=mine.pk).get()
    assert response.status_code == 302 and copy.messages.count() == 2
    assert list(ModelCall.objects.values_list(*LEDGER_FIELDS)) == before
    assert usage.daily_usage(since=today) == daily_before
    assert usage.conversation_totals(copy) == usage.Totals(0, 0)
    # The imported answer still shows what its file recorded, as a record, counted nowhere.
    page = client.get(reverse("conversation", args=[copy.pk])).content.decode()
    assert "1,800,000 tokens (900,000 in · 900,000 out)" in page


def test_a_reply_whose_process_died_leaves_its_row_marked_interrupted(owner, conversation):
    prepared = services.post_message(
        user=owner, conversation_id=conversation.pk, content="Hello", client_id="c"
    )
    call = prepared.reply.model_call
    Message.objects.filter(pk=prepared.reply.pk).update(lease_expires_at=timezone.now())
    assert services.sweep_orphaned_replies(conversation.pk) == 1
    call.refresh_from_db()
    assert call.status == Status.INTERRUPTED and call.ended_at is not None
    assert (call.prompt_tokens, call.completion_tokens) == (None, None)
