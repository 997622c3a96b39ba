"""Token confidence: a reply's logprobs are summarised and drawn as a heatmap, live and stored."""

from __future__ import annotations

import math
import re

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from conversations import confidence
from conversations.models import Message, Role, Status
from tests.conversations.chat_client import ChatSocket

pytestmark = pytest.mark.django_db


def entry(token: str, p: float, *alternatives: tuple[str, float]) -> dict:
    return {
        "token": token,
        "logprob": math.log(p),
        "top_logprobs": [{"token": t, "logprob": math.log(q)} for t, q in alternatives],
    }


LOGPROBS = [
    entry("The", 0.99, ("The", 0.99), ("A", 0.01)),
    entry(" sky", 0.50, (" sky", 0.50), (" sea", 0.40)),
    entry(" is", 0.95),
    entry("\n", 0.05),
    entry(" blue", 0.20, (" blue", 0.20), (" grey", 0.70)),
    entry(".", 0.90),
]


def test_a_summary_gives_the_mean_and_the_lowest_confidence():
    summary = confidence.summarize(LOGPROBS)
    assert summary.count == 6
    assert summary.mean_percent == round((0.99 + 0.5 + 0.95 + 0.05 + 0.2 + 0.9) / 6 * 100)
    assert summary.lowest.text == "\n" and summary.lowest.percent == 5


def test_the_least_certain_tokens_leave_out_whitespace_and_come_least_certain_first():
    least = confidence.summarize(LOGPROBS).least_certain
    assert [t.text for t in least] == [" blue", " sky", ".", " is", "The"]


def test_a_reply_without_logprobs_has_no_summary():
    assert confidence.summarize(None) is None
    assert confidence.summarize([]) is None


def test_tokens_are_shown_with_their_edge_spaces_and_line_breaks_visible():
    assert confidence.shown(" blue") == "␣blue"
    assert confidence.shown("\n") == "↵"
    assert confidence.shown("  ") == "␣␣"


def stored_reply(conversation, logprobs=LOGPROBS) -> Message:
    Message.objects.create(conversation=conversation, role=Role.USER, content="Colour?")
    return Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="".join(e["token"] for e in logprobs),
        status=Status.COMPLETE,
        parameters={"model": "m", "temperature": 1.0, "logprobs": True, "top_logprobs": 2},
        logprobs=logprobs,
    )


def test_a_stored_reply_is_drawn_as_a_heatmap_with_its_summary_on_revisit(
    client, owner, conversation
):
    stored_reply(conversation)
    client.force_login(owner)
    html = client.get(reverse("conversation", args=[conversation.pk])).content.decode()

    heatmap = re.search(r'<div class="heatmap"[^>]*hidden>(.*?)</div>', html, re.S).group(1)
    tokens = re.findall(
        r'<span class="token conf-(\d)" tabindex="(-?\d)" data-p="([\d.]+)"', heatmap
    )
    assert [(level, p) for level, _tab, p in tokens] == [
        ("4", "0.9900"),
        ("2", "0.5000"),
        ("4", "0.9500"),
        ("1", "0.0500"),
        ("1", "0.2000"),
        ("4", "0.9000"),
    ]
    # One tab stop: the first token; the arrow keys move on from there.
    assert [tab for _level, tab, _p in tokens] == ["0", "-1", "-1", "-1", "-1", "-1"]
    assert "&quot; grey&quot;, 0.7" in heatmap  # the alternative the model weighed
    assert "Confidence: mean 60% · lowest 5% · 6 tokens" in html
    assert 'class="tool heatmap-toggle" aria-pressed="false"' in html
    assert "Least certain:" in html and "␣blue" in html


def test_a_reply_made_without_token_confidence_shows_none(client, owner, conversation):
    Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, content="Hi", status=Status.COMPLETE
    )
    client.force_login(owner)
    html = client.get(reverse("conversation", args=[conversation.pk])).content.decode()
    assert 'class="heatmap"' not in html and "heatmap-toggle" not in html


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("isolated_channel_layer")
async def test_a_streamed_reply_keeps_every_tokens_probability_for_the_page(owner, conversation):
    conversation.logprobs, conversation.top_logprobs = True, 3
    await database_sync_to_async(conversation.save)()
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Tell me about the sky")
        ended = await socket.until("reply.ended")
    stored = await database_sync_to_async(Message.objects.get)(pk=ended["message"]["id"])
    assert stored.logprobs == [
        item for frame in socket.of_type("reply.delta") for item in frame["logprobs"]
    ]
    summary = confidence.summarize(stored.logprobs)
    assert summary.count == len(stored.logprobs) > 5
    assert 0 < summary.lowest.probability <= summary.mean <= 1
    assert all(len(t.alternatives) == 3 for t in confidence.tokens_of(stored.logprobs))


def test_the_summary_speaks_korean_to_a_korean_reader(client, owner, conversation):
    stored_reply(conversation)
    client.force_login(owner)
    response = client.get(
        reverse("conversation", args=[conversation.pk]), HTTP_ACCEPT_LANGUAGE="ko"
    )
    html = response.content.decode()
    assert "확신도: 평균 60% · 최저 5% · 토큰 6개" in html
    assert ">히트맵</button>" in html and "가장 불확실한 토큰:" in html
