"""Usage: tokens per reply and per conversation on the page; per user and day in the admin."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from conversations import services, usage
from conversations.models import Message, Role, Status
from tests.features.ledger import ledger_reply

pytestmark = pytest.mark.django_db


def reply(conversation, prompt, completion, *, days_ago=0, model="gpt-4o-mini"):
    return ledger_reply(conversation, prompt, completion, days_ago=days_ago, model=model)


def test_each_reply_and_the_conversation_show_the_tokens_they_used(client, owner, personas):
    conversation = services.start_conversation(user=owner)
    reply(conversation, 1200, 34)
    reply(conversation, 1500, 66)
    Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, content="", status=Status.ERROR
    )
    client.force_login(owner)
    html = client.get(reverse("conversation", args=[conversation.pk])).content.decode()
    assert '<span class="usage">1,234 tokens (1,200 in · 34 out)</span>' in html
    assert '<span class="usage">1,566 tokens (1,500 in · 66 out)</span>' in html
    assert '<span class="usage"></span>' in html  # a failed reply reported none
    assert 'data-prompt="2700" data-completion="100"' in html
    assert "2,800 tokens (2,700 in · 100 out)" in html


def test_the_usage_of_a_conversation_counts_only_its_own_replies(owner, outsider, personas):
    mine = services.start_conversation(user=owner)
    theirs = services.start_conversation(user=outsider)
    reply(mine, 10, 5)
    reply(theirs, 1000, 500)
    assert usage.conversation_totals(mine) == usage.Totals(10, 5, 1)


def test_daily_usage_adds_up_each_users_replies_per_day(owner, outsider, personas):
    mine = services.start_conversation(user=owner)
    other = services.start_conversation(user=owner)
    theirs = services.start_conversation(user=outsider)
    reply(mine, 10, 5)
    reply(other, 20, 5)
    reply(mine, 100, 50, days_ago=1)
    reply(theirs, 7, 3)
    today = timezone.localdate()
    rows = usage.daily_usage(since=today - timedelta(days=6))
    assert [(r.day, r.username, r.totals) for r in rows] == [
        (today, "outsider", usage.Totals(7, 3, 1)),
        (today, "owner", usage.Totals(30, 10, 2)),
        (today - timedelta(days=1), "owner", usage.Totals(100, 50, 1)),
    ]
    only_today = usage.daily_usage(since=today, user_id=owner.pk)
    assert [(r.day, r.totals.total) for r in only_today] == [(today, 40)]


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(admin)
    return client


def test_the_admin_shows_tokens_per_user_and_day(admin_client, owner, personas):
    conversation = services.start_conversation(user=owner)
    reply(conversation, 1000, 234)
    reply(conversation, 10, 5, days_ago=40)  # outside the default 30 days
    changelist = admin_client.get(reverse("admin:conversations_conversation_changelist"))
    assert "Token usage per day" in changelist.content.decode()
    html = admin_client.get(reverse("admin:conversations_conversation_usage")).content.decode()
    assert f'<a href="?days=30&amp;user={owner.pk}">owner</a>' in html
    assert "<td>1,000</td>" in html and "<td>234</td>" in html and "<td>1,234</td>" in html
    wider = admin_client.get(reverse("admin:conversations_conversation_usage"), {"days": 90})
    assert "<td>1,249</td>" in wider.content.decode()  # the total row over both days


def test_the_usage_page_is_for_staff_only(client, owner):
    client.force_login(owner)
    response = client.get(reverse("admin:conversations_conversation_usage"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_new_conversation_shows_no_total_rather_than_zero_tokens(client, owner, personas):
    conversation = services.start_conversation(user=owner)
    client.force_login(owner)
    html = client.get(reverse("conversation", args=[conversation.pk])).content.decode()
    assert "0 tokens" not in html
    assert 'data-prompt="0" data-completion="0" data-estimated="0"' in html
    assert html.count('title="Tokens this conversation used" hidden></p>') == 2  # header, settings


def test_the_admin_draws_the_tokens_per_day_as_an_inline_svg_chart(admin_client, owner, personas):
    conversation = services.start_conversation(user=owner)
    reply(conversation, 1000, 234)
    reply(conversation, 400, 100, days_ago=2)
    html = admin_client.get(
        reverse("admin:conversations_conversation_usage"), {"days": 7}
    ).content.decode()
    start = html.index('<svg class="usage-chart"')
    chart = html[start : html.index("</svg>", start)]
    assert 'role="img" aria-label="Tokens per day"' in chart
    assert chart.count('<rect class="usage-bar"') == 7  # one bar a day, empty days too
    today, two_days_ago = timezone.localdate(), timezone.localdate() - timedelta(days=2)
    assert f"<title>{date_format(today, 'DATE_FORMAT')}: 1,234</title>" in chart
    assert f"<title>{date_format(two_days_ago, 'DATE_FORMAT')}: 500</title>" in chart
    # The tallest bar is the busiest day; an empty day's bar has no height.
    heights = [
        float(h) for h in re.findall(r'<rect class="usage-bar"[^>]* height="([\d.]+)"', chart)
    ]
    assert heights[-1] == max(heights) > heights[-3] > 0 and heights[0] == 0
    assert "<script" not in html.split('id="content-main"')[1]
    # Nothing from another host (not "cdn" anywhere: a CSRF token may hold those letters).
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)


def test_the_admin_shows_the_tokens_of_each_model(admin_client, owner, personas):
    conversation = services.start_conversation(user=owner)
    reply(conversation, 1000, 234, model="gpt-4o-mini")
    reply(conversation, 50, 10, model="llama3")
    reply(conversation, 5, 5, model="llama3")
    html = admin_client.get(reverse("admin:conversations_conversation_usage")).content.decode()
    assert '<th scope="col">Per model</th>' in html
    row = html[html.index("<tbody>") : html.index("</tbody>")]
    assert (
        '<td class="per-model"><span>gpt-4o-mini: 1,234</span><br><span>llama3: 70</span></td>'
        in row
    )
    assert "<td>1,304</td>" in row and "<td>3</td>" in row
