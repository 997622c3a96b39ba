"""The replies that end together are saved together: on PostgreSQL one UPDATE for all of them,
each row with its own values and guarded on `streaming` as every end is; an UPDATE each with
`CHAT_ENDS_IN_ONE_STATEMENT=0` and on SQLite. Either way a reply a sweep ended first keeps
what the sweep wrote."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import services
from conversations.models import Message, ModelCall, Status
from conversations.services import End, Post

pytestmark = pytest.mark.django_db

LOGPROBS = [{"token": "Hi", "logprob": -0.25, "top_logprobs": []}]


@pytest.fixture
def streaming(make_user, personas, model_server):
    """Five replies streaming, in the conversations of five people."""
    conversations = [services.start_conversation(user=make_user(f"ender-{i}")) for i in range(5)]
    posts = [Post(c.user, c.pk, "Hello", f"ends-{i}") for i, c in enumerate(conversations)]
    return services.post_messages(posts)


def end_of(prepared, number: int) -> End:
    """Each end different: its status, text, tokens, and for some, logprobs or an estimate."""
    final = {
        "content": f"Answer number {number}, 100% its own: 'quoted' and \\ escaped",
        "seq": number + 1,
        "finish_reason": "stop" if number % 2 else "",
        "error": "" if number % 2 else f"Failure {number}",
        "logprobs": LOGPROBS if number % 2 else None,
        "prompt_tokens": 10 + number,
        "completion_tokens": None if number == 4 else 20 + number,
    }
    if number >= 3:
        final["usage_estimated"] = True
    status = Status.COMPLETE if number % 2 else Status.ERROR
    return End(
        prepared.reply.pk, prepared.conversation.pk, status, final, prepared.reply.model_call_id
    )


@pytest.mark.parametrize("in_one_statement", [True, False], ids=["one statement", "each"])
def test_each_end_keeps_its_own_values_and_a_swept_reply_keeps_the_sweeps(
    streaming, settings, in_one_statement
):
    settings.CHAT_ENDS_IN_ONE_STATEMENT = in_one_statement
    swept = streaming[0].reply
    services.end_replies(
        Message.objects.filter(pk=swept.pk), status=Status.INTERRUPTED, error="Swept."
    )
    ends = [end_of(prepared, number) for number, prepared in enumerate(streaming)]

    saved = services.save_ends(ends)

    assert [row.pk for row in saved] == [end.reply_id for end in ends]
    first = Message.objects.get(pk=swept.pk)
    assert (first.status, first.error, first.content) == (Status.INTERRUPTED, "Swept.", "")
    for end in ends[1:]:
        row = Message.objects.get(pk=end.reply_id)
        assert row.status == end.status
        for name, value in end.final.items():
            assert getattr(row, name) == value, name
        assert row.usage_estimated == ("usage_estimated" in end.final)
        assert row.completed_at is not None
        assert row.lease_expires_at is None and row.runner_channel == ""
        call = ModelCall.objects.get(pk=end.call_id)
        assert (call.status, call.prompt_tokens) == (end.status, end.final["prompt_tokens"])


def test_on_postgresql_the_ends_with_the_same_fields_are_one_update(streaming, settings):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite's UPDATEs cost a fifth as much, one each")
    settings.CHAT_ENDS_IN_ONE_STATEMENT = True
    ends = [end_of(prepared, number) for number, prepared in enumerate(streaming)]
    with CaptureQueriesContext(connection) as queries:
        services.save_ends(ends)
    updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "conversations_message"')]
    # Two shapes of end: with an estimate of the tokens (two of them) and without (three).
    assert len(updates) == 2
