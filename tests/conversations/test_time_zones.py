"""Times the server writes into pages are in the reader's time zone (the `tz` cookie that
static/js/timezone.js keeps), as the times the page's scripts write; the server's zone without
one, or with one that names no zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from conversations import services
from conversations.models import Message, Role, Status
from tests.paths import bulk_append

pytestmark = pytest.mark.django_db

ANSWERED = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)  # 00:30 the next day in Seoul


@pytest.fixture
def answered_page(client, owner, personas):
    conversation = services.start_conversation(user=owner)
    common = {"conversation": conversation, "parameters": {"model": "gpt-4o-mini"}}
    bulk_append(
        [
            Message(role=Role.USER, content="When?", **common),
            Message(role=Role.ASSISTANT, content="Now.", status=Status.COMPLETE, **common),
        ]
    )
    Message.objects.filter(conversation=conversation).update(created_at=ANSWERED)
    client.force_login(owner)
    return f"/c/{conversation.pk}/"


def answered_time(client, url: str) -> str:
    page = client.get(url).content.decode()
    start = page.index('<dt>Answered</dt><dd><time datetime="') + len("<dt>Answered</dt><dd>")
    return page[start : page.index("</time>", start)]


def test_a_messages_time_is_in_the_browsers_time_zone(client, answered_page):
    client.cookies["tz"] = "Asia%2FSeoul"
    assert answered_time(client, answered_page) == (
        '<time datetime="2026-12-02T00:30:00+09:00">Dec. 2, 2026, 12:30 a.m.'
    )


@pytest.mark.parametrize("cookie", [None, "", "Mars%2FOlympus", "..%2F..%2Fetc%2Fpasswd", "x" * 90])
def test_without_a_time_zone_it_is_the_servers(client, answered_page, cookie, settings):
    assert settings.TIME_ZONE == "UTC"
    if cookie is not None:
        client.cookies["tz"] = cookie
    assert answered_time(client, answered_page) == (
        '<time datetime="2026-12-01T15:30:00+00:00">Dec. 1, 2026, 3:30 p.m.'
    )


def test_one_readers_time_zone_does_not_stay_for_the_next(client, answered_page):
    client.cookies["tz"] = "America%2FNew_York"
    assert "-05:00" in answered_time(client, answered_page)
    del client.cookies["tz"]
    assert "+00:00" in answered_time(client, answered_page)
    assert timezone.get_current_timezone_name() == "UTC"
