"""Compare: one prompt to several personas (or one persona at several temperatures), started
at once, each answer its own conversation."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import ThreadSensitiveContext
from channels.db import database_sync_to_async
from django.test import AsyncClient
from django.urls import reverse

from conversations import compare, replies, services
from conversations.errors import ChatError
from conversations.models import Conversation, Message, Persona, Role, Status

pytestmark = pytest.mark.django_db(transaction=True)

# The simulator waits a second before its first token, then streams 20 tokens at once: each
# reply takes about one second however many run beside it.
PACED = "Which pan for an omelette? [[sim:delay=1,tokens=20]]"


@pytest.fixture(autouse=True)
def patient_model(model_server, settings):
    """Wait for the paced first token (the suite's usual read timeout is one second)."""
    settings.OPENAI_READ_TIMEOUT = 5.0
    return model_server


@database_sync_to_async
def three_personas() -> list[Persona]:
    return list(Persona.objects.active().order_by("position")[:3])


@database_sync_to_async
def replies_of(conversation_ids) -> list[Message]:
    return list(Message.objects.filter(conversation_id__in=conversation_ids, role=Role.ASSISTANT))


@pytest.mark.usefixtures("isolated_channel_layer")
async def test_a_compare_of_three_personas_runs_concurrently(owner, personas, model_server):
    targets = [compare.Target(p) for p in await three_personas()]

    started = time.monotonic()
    columns = await compare.start_compare(user=owner, prompt=PACED, targets=targets)
    await compare.wait_for(columns)
    elapsed = time.monotonic() - started

    # One reply takes a second; three one after another would take three.
    assert 1.0 <= elapsed < 2.0, elapsed
    answers = await replies_of([c.conversation.pk for c in columns])
    assert [a.status for a in answers] == [Status.COMPLETE] * 3
    # The model was asked three times, each time by one of the personas.
    assert len(model_server.config.requests) == 3


@pytest.mark.usefixtures("isolated_channel_layer")
async def test_a_compare_of_three_personas_makes_three_conversations_of_the_user(
    owner, personas, model_server
):
    chosen = await three_personas()
    columns = await compare.start_compare(
        user=owner, prompt=PACED, targets=[compare.Target(p) for p in chosen]
    )
    await compare.wait_for(columns)

    @database_sync_to_async
    def stored():
        return [
            (c.persona_id, c.title, [m.role for m in c.messages.order_by("id")])
            for c in Conversation.objects.owned_by(owner).order_by("created_at")
        ]

    conversations = await stored()
    assert [persona for persona, _t, _m in conversations] == [p.pk for p in chosen]
    assert all(roles == [Role.USER, Role.ASSISTANT] for _p, _t, roles in conversations)
    # Titled after the prompt and the column, so the sidebar tells them apart.
    titles = [title for _p, title, _m in conversations]
    # The column first: the sidebar cuts long titles at the end.
    assert titles[0] == f"{chosen[0].name_en} · Which pan for an omelette?"
    assert len(set(titles)) == 3


@pytest.mark.usefixtures("isolated_channel_layer")
async def test_a_compare_at_several_temperatures_answers_each_at_its_own(
    owner, default_persona, model_server
):
    targets = [compare.Target(default_persona, t) for t in (0.2, 1.0, 1.8)]
    columns = await compare.start_compare(user=owner, prompt="Name a colour", targets=targets)
    await compare.wait_for(columns)
    sent = sorted(request["temperature"] for request in model_server.config.requests)
    assert sent == [0.2, 1.0, 1.8]
    temperatures = [c.conversation.temperature for c in columns]
    assert temperatures == [0.2, 1.0, 1.8]
    name = default_persona.name_en
    assert [c.conversation.title for c in columns] == [
        f"{name} · T 0.2 · Name a colour",
        f"{name} · T 1 · Name a colour",
        f"{name} · T 1.8 · Name a colour",
    ]


@pytest.mark.usefixtures("isolated_channel_layer")
async def test_a_compare_the_users_limits_cannot_start_whole_is_refused_and_makes_nothing(
    owner, personas, model_server, settings
):
    settings.CHAT_MAX_CONCURRENT_REPLIES = 2
    targets = [compare.Target(p) for p in await three_personas()]
    with pytest.raises(ChatError) as refused:
        await compare.start_compare(user=owner, prompt="Hi", targets=targets)
    assert refused.value.code == "too_many_replies"
    assert "A compare of 3 needs 3 answers at once" in refused.value.message
    count = await database_sync_to_async(Conversation.objects.count)()
    assert count == 0


@pytest.mark.usefixtures("isolated_channel_layer")
async def test_a_compare_needs_two_to_four_columns(owner, default_persona, model_server):
    with pytest.raises(ChatError):
        await compare.start_compare(
            user=owner, prompt="Hi", targets=[compare.Target(default_persona)]
        )


@pytest.mark.usefixtures("isolated_channel_layer")
async def test_starting_a_compare_from_the_form_shows_its_columns(owner, personas, model_server):
    chosen = await three_personas()
    client = AsyncClient()
    await database_sync_to_async(client.force_login)(owner)

    # Each request in a thread-sensitive context of its own, as Django's ASGI handler under
    # daphne runs it (the test client alone would share one thread with the replies).
    async with ThreadSensitiveContext():
        response = await client.post(
            reverse("start_compare"),
            {"mode": "personas", "personas": [p.pk for p in chosen], "prompt": PACED},
        )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("compare_view") + "?c=")
    # The replies went on in this event loop after the response, as under daphne.
    await replies.wait_for_replies()

    page = await client.get(response["Location"])
    html = page.content.decode()
    assert html.count('class="compare-column"') == 3
    assert html.count('data-role="assistant" data-status="complete"') == 3
    assert "Open as a chat" in html


@pytest.mark.usefixtures("isolated_channel_layer")
async def test_a_compare_of_one_persona_is_refused_by_the_form(owner, personas, model_server):
    client = AsyncClient()
    await database_sync_to_async(client.force_login)(owner)
    one = (await three_personas())[0]
    response = await client.post(
        reverse("start_compare"), {"mode": "personas", "personas": [one.pk], "prompt": "Hi"}
    )
    assert response.status_code == 400
    assert "Choose 2 to 4 personas." in response.content.decode()
    assert await database_sync_to_async(Conversation.objects.count)() == 0


@pytest.mark.usefixtures("isolated_channel_layer")
async def test_temperatures_are_checked_by_the_form(owner, default_persona, model_server):
    client = AsyncClient()
    await database_sync_to_async(client.force_login)(owner)
    for value, error in [
        ("0.5, 3", "Temperatures go from 0 to 2."),
        ("1", "Give 2 to 4 different temperatures."),
        ("hot, cold", "“hot” is not a number."),
    ]:
        response = await client.post(
            reverse("start_compare"),
            {
                "mode": "temperatures",
                "persona": default_persona.pk,
                "temperatures": value,
                "prompt": "Hi",
            },
        )
        assert response.status_code == 400
        assert error in response.content.decode().replace("&ldquo;", "“").replace("&rdquo;", "”")


def test_the_columns_of_another_users_conversations_are_not_shown(
    client, owner, outsider, personas
):
    mine = services.start_conversation(user=owner)
    theirs = services.start_conversation(user=outsider)
    client.force_login(owner)
    url = reverse("compare_view")
    assert client.get(url, {"c": [mine.pk, theirs.pk]}).status_code == 404
    assert client.get(url, {"c": ["not-a-uuid"]}).status_code == 404
    assert client.get(url, {"c": [mine.pk]}).status_code == 200


def test_compare_pages_need_a_login(client):
    for name in ("compare", "compare_view"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    response = client.post(reverse("start_compare"), {"prompt": "Hi"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
