"""A conversation's title from the model: after its first answer the app asks for a short title
in the user's language (`CHAT_MODEL_TITLES`), and every open tab and the sidebar get it. The
first message, cut, stays the title when the request fails, when the owner renamed it meanwhile,
or when the setting is off. The simulator answers a title request with the first words of the
user's message, through the real SDK over HTTP."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from conversations import llm, replies, services
from conversations.models import Conversation, ModelCall
from tests.conversations.chat_client import ChatSocket, settle

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer"),
]

QUESTION = "Omelettes: how do I keep them soft and fluffy every single time I make them?"


@pytest.fixture
def titles_on(settings):
    settings.CHAT_MODEL_TITLES = True


@database_sync_to_async
def title_of(conversation) -> str:
    return Conversation.objects.get(pk=conversation.pk).title


def title_requests(model_server) -> list[dict]:
    return [
        body
        for body in model_server.config.requests
        if body["messages"][0]["content"] == llm.TITLE_INSTRUCTION
    ]


async def drain(socket, seconds: float = 0.3) -> None:
    """Collect the frames still on their way, until none comes for a moment."""
    while not await socket.communicator.receive_nothing(timeout=seconds):
        await socket.receive()


@pytest.mark.usefixtures("titles_on")
@pytest.mark.parametrize(
    ("question", "title"),
    [
        (QUESTION, "Omelettes: how do I keep"),
        (
            "김치찌개를 맛있게 끓이는 방법을 알려 주세요. 재료는 집에 있어요.",
            "김치찌개를 맛있게 끓이는 방법을 알려",
        ),
    ],
)
async def test_the_first_answer_is_followed_by_the_models_title_on_every_tab(
    owner, outsider, conversation, model_server, question, title
):
    # Every tab of the owner lists the conversation in its sidebar, whichever one it shows.
    elsewhere, theirs = await database_sync_to_async(
        lambda: [services.start_conversation(user=user) for user in (owner, outsider)]
    )()
    async with (
        ChatSocket(owner, conversation.pk) as socket,
        ChatSocket(owner, conversation.pk) as other_tab,
        ChatSocket(owner, elsewhere.pk) as other_conversation,
        ChatSocket(outsider, theirs.pk) as strangers,
    ):
        tabs = (socket, other_tab, other_conversation, strangers)
        for tab in tabs:
            await tab.until("ready")
        await socket.say(question)
        await socket.until("reply.ended")
        await settle()
        for tab in tabs:
            await drain(tab)
        await socket.say("And a second question")
        await socket.until("reply.ended")
        await settle()
        await drain(strangers)

    cut = services.title_from(question)
    for tab in (socket, other_tab, other_conversation):
        titles = [f["conversation"]["title"] for f in tab.of_type("conversation.updated")]
        assert titles == [cut, title], "the cut title at once, the model's after the answer"
    assert strangers.of_type("conversation.updated") == []
    assert await title_of(conversation) == title
    (asked,) = title_requests(model_server)  # once: not after the second answer
    assert asked["messages"][1] == {"role": "user", "content": question}
    assert not asked.get("stream")
    # The title is a model call of its own in the ledger, besides the two answers'.
    kinds = await database_sync_to_async(list)(
        ModelCall.objects.filter(user=owner).order_by("id").values_list("kind", flat=True)
    )
    assert kinds == ["reply", "title", "reply"]


@pytest.mark.usefixtures("titles_on")
async def test_the_sidebar_shows_the_models_title(async_client, owner, conversation, model_server):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say(QUESTION)
        await socket.until("reply.ended")
        await settle()
    await async_client.aforce_login(owner)
    page = await async_client.get(reverse("conversation", args=[conversation.pk]))
    html = page.content.decode()
    assert '<span class="conversation-title" data-title>Omelettes: how do I keep</span>' in html


async def test_with_the_setting_off_the_first_message_stays_the_title(
    owner, conversation, model_server, settings
):
    settings.CHAT_MODEL_TITLES = False
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say(QUESTION)
        await socket.until("reply.ended")
        await settle()
        await drain(socket)
    assert title_requests(model_server) == []
    assert await title_of(conversation) == services.title_from(QUESTION)
    assert len(socket.of_type("conversation.updated")) == 1


@pytest.mark.usefixtures("titles_on")
async def test_a_title_request_that_fails_leaves_the_first_message_as_the_title(
    owner, conversation, model_server, monkeypatch
):
    # The answer's first token comes after 0.5 s, well within the read timeout; the title,
    # not streamed, takes as long, and its own timeout is shorter.
    monkeypatch.setattr(llm, "TITLE_TIMEOUT_SECONDS", 0.2)
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say(f"{QUESTION} [[sim:delay=0.5]]")
        ended = await socket.until("reply.ended")
        await settle()
        await drain(socket)
    assert ended["message"]["status"] == "complete"
    assert len(title_requests(model_server)) == 1, "asked, and it timed out"
    assert await title_of(conversation) == services.title_from(QUESTION)
    assert len(socket.of_type("conversation.updated")) == 1


def test_a_rename_by_the_owner_meanwhile_wins_over_the_models_title(owner, conversation):
    services.rename_conversation(user=owner, conversation_id=conversation.pk, title="Mine")
    assert not services.set_model_title(
        conversation_id=conversation.pk, replaces="Omelettes", title="Soft omelettes"
    )
    assert Conversation.objects.get(pk=conversation.pk).title == "Mine"


@pytest.mark.parametrize(
    ("answer", "title"),
    [
        ('"Soft Omelettes."', "Soft Omelettes"),
        ("Title: **Fluffy eggs**\nHere is why…", "Fluffy eggs"),
        ("제목: 「김치찌개 끓이기」", "김치찌개 끓이기"),
        ("\n\n", ""),
        ('{\n  "fruits": ["apple", "pear"]\n}', ""),
        ('```json\n{\n  "title": "Fruit"\n}\n```', ""),
        ("```\nFruit basket\n```", "Fruit basket"),
        ("— 🍳 —", ""),
    ],
)
def test_the_models_answer_is_made_a_title(answer, title):
    assert services.tidy_title(answer) == title


@pytest.mark.usefixtures("titles_on")
async def test_a_process_asks_for_a_few_titles_at_a_time(owner, model_server, monkeypatch):
    """At 200 first answers ending together, their 200 title requests, built and sent at once,
    held the other answers' `reply.ended` 400 ms behind their last token. A title is not
    urgent: a process asks for `TITLES_AT_ONCE` at a time, and every one is still asked."""
    in_flight, most = 0, 0
    ask_title = llm.ask_title

    async def counted(**kwargs):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            return await ask_title(**kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(llm, "ask_title", counted)

    @database_sync_to_async
    def conversations(count: int) -> list[Conversation]:
        made = []
        for number in range(count):
            conversation = services.start_conversation(user=owner)
            conversation.title = f"Soup {number}"
            conversation.save(update_fields=["title"])
            made.append(conversation)
        return made

    made = await conversations(3 * replies.TITLES_AT_ONCE)
    for number, conversation in enumerate(made):
        # The simulator takes 0.2 s to answer each: the requests would all overlap.
        message = f"Soup number {number} with tofu and kimchi [[sim:delay=0.2]]"
        replies.title_later(conversation, f"Soup {number}", message, conversation.effective_model)
    await replies.wait_for_replies()
    assert most == replies.TITLES_AT_ONCE
    assert len(title_requests(model_server)) == len(made)
    titles = [await title_of(conversation) for conversation in made]
    assert titles == [f"Soup number {number} with tofu" for number in range(len(made))]


@pytest.mark.usefixtures("titles_on")
async def test_a_title_that_waits_too_long_for_its_turn_is_given_up(
    owner, model_server, monkeypatch
):
    """More new conversations a second than the model answers titles for would queue the
    titles, and their tasks, without end: one that waited `TITLE_WAIT_SECONDS` is given up,
    its first message, cut, stays its title, and no call is made or counted for it."""
    monkeypatch.setattr(replies, "TITLES_AT_ONCE", 1)
    monkeypatch.setattr(replies, "TITLE_WAIT_SECONDS", 0.1)

    @database_sync_to_async
    def two_conversations() -> list[Conversation]:
        made = []
        for name in ("Slow soup", "Waiting soup"):
            conversation = services.start_conversation(user=owner)
            conversation.title = name
            conversation.save(update_fields=["title"])
            made.append(conversation)
        return made

    slow, waiting = await two_conversations()
    model = slow.effective_model
    replies.title_later(slow, "Slow soup", "Slow soup with kimchi [[sim:delay=0.5]]", model)
    replies.title_later(waiting, "Waiting soup", "Waiting soup with tofu", model)
    await replies.wait_for_replies()
    assert [await title_of(slow), await title_of(waiting)] == [
        "Slow soup with kimchi",
        "Waiting soup",
    ]
    assert len(title_requests(model_server)) == 1

    @database_sync_to_async
    def title_calls() -> int:
        return ModelCall.objects.filter(user=owner, kind="title").count()

    assert await title_calls() == 1


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        ({"choices": [{"message": {"content": "Soft omelettes"}}], "usage": {}}, "Soft omelettes"),
        ({"choices": [{"message": {"content": None}}]}, None),
        ({"choices": []}, None),
        ({"choices": "none"}, None),
        ({"choices": [{"message": "text"}]}, None),
    ],
)
def test_a_title_is_read_from_the_answer_as_the_server_sent_it(answer, text):
    assert llm._title_of(answer)[0] == text


@pytest.mark.parametrize("answer", [["a list"], "text", {"choices": [{"message": {"content": 5}}]}])
def test_an_answer_of_another_shape_gives_no_title(answer):
    with pytest.raises(ValueError):
        llm._title_of(answer)
