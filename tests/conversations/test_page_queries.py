"""A conversation's page runs the same number of queries for 10 messages as for 1,000, and for
a few conversations in the sidebar as for many: nothing is loaded one row at a time."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conversations import services, snapshots
from conversations.models import Message, Role, Status
from conversations.selectors import PAGE_SIZE
from tests.paths import bulk_append

pytestmark = pytest.mark.django_db


def fill(conversation, count: int) -> None:
    bulk_append(
        Message(
            conversation=conversation,
            role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
            content=f"message **{i}**\n\n```python\nprint({i})\n```",
            status=Status.COMPLETE,
            parameters={"model": "m", "temperature": 0.5} if i % 2 else None,
            prompt_tokens=10 if i % 2 else None,
            completion_tokens=20 if i % 2 else None,
        )
        for i in range(count)
    )


def count_queries(client, conversation) -> tuple[int, bytes]:
    # Each page counted as the first the process serves after its small tables went stale.
    snapshots.forget_all()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("conversation", args=[conversation.pk]))
    assert response.status_code == 200
    return len(queries), response.content


def test_the_page_of_1000_messages_runs_as_many_queries_as_the_page_of_10(client, owner, personas):
    small = services.start_conversation(user=owner)
    fill(small, 10)
    large = services.start_conversation(user=owner)
    fill(large, 1000)
    client.force_login(owner)

    small_count, _ = count_queries(client, small)
    large_count, content = count_queries(client, large)

    assert large_count == small_count
    # Only the newest page is rendered; the rest loads on scroll.
    assert content.count(b'class="message"') == PAGE_SIZE
    assert b"message <strong>999</strong>" in content
    assert b"message <strong>949</strong>" not in content


def titled(owner, number: int) -> None:
    """A conversation the sidebar lists (a blank one it leaves out)."""
    conversation = services.start_conversation(user=owner)
    services.rename_conversation(user=owner, conversation_id=conversation.pk, title=f"#{number}")


def test_the_sidebar_of_60_conversations_runs_as_many_queries_as_that_of_3(client, owner, personas):
    current = services.start_conversation(user=owner)
    fill(current, 4)
    for number in range(2):
        titled(owner, number)
    client.force_login(owner)
    few, _ = count_queries(client, current)

    for number in range(57):
        titled(owner, number)
    many, content = count_queries(client, current)

    assert many == few
    assert content.count(b'class="conversation-item"') == 60


def test_a_page_of_older_messages_runs_a_fixed_number_of_queries(client, owner, personas):
    conversation = services.start_conversation(user=owner)
    fill(conversation, 300)
    last = conversation.messages.order_by("-id").first().pk
    client.force_login(owner)
    url = reverse("older_messages", args=[conversation.pk])
    with CaptureQueriesContext(connection) as first:
        client.get(url, {"before": last - 49})
    with CaptureQueriesContext(connection) as deeper:
        response = client.get(url, {"before": last - 199})
    assert len(first) == len(deeper)
    assert response.json()["has_older"] is True


def fork(conversation, every: int) -> int:
    """Beside every `every`-th message of the path, another version (not chosen); how many."""
    path = list(conversation.messages.order_by("id"))
    versions = [
        Message(
            conversation=conversation,
            role=message.role,
            content=f"another version of {message.content}",
            parent_id=message.parent_id,
            selected_at=message.selected_at.replace(year=2000),
        )
        for message in path[1::every]
    ]
    Message.objects.bulk_create(versions)
    return len(versions)


def test_a_forked_conversation_of_1000_messages_opens_with_as_many_queries_as_one_of_10(
    client, owner, personas
):
    small = services.start_conversation(user=owner)
    fill(small, 10)
    assert fork(small, 5) == 2
    large = services.start_conversation(user=owner)
    fill(large, 1000)
    assert fork(large, 10) == 100
    client.force_login(owner)

    small_count, _ = count_queries(client, small)
    large_count, content = count_queries(client, large)

    assert large_count == small_count
    assert content.count(b'class="message"') == PAGE_SIZE
    assert content.count(b'data-version="1/2"') == 5  # the path's forks on the newest page
    assert b"another version" not in content
