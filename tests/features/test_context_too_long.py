"""A conversation longer than the model reads at once: the user is told so in words that say
what to do, not "try again". OpenAI, vLLM and llama.cpp's Python server refuse such a request
with HTTP 400 `context_length_exceeded` (the simulator's `context_window` acts it out); the
Python server, streamed, opens the answer and closes it empty instead (the `empty` fault).
The message sent is kept either way."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from conversations.context import prompt_budget
from conversations.models import ChatModel, Status
from tests.conversations.chat_client import ChatSocket, saved

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer"),
]

LONG = "Summarize this: " + " ".join(f"River {i} flows past the old mill." for i in range(60))


@pytest.mark.parametrize(
    ("language", "words"),
    [("en", "longer than the model can read at once"), ("ko", "컨텍스트 창")],
)
async def test_a_request_over_the_models_window_says_so(
    owner, conversation, model_server, language, words
):
    model_server.config.context_window = 100
    headers = [(b"accept-language", language.encode())]
    async with ChatSocket(owner, conversation.pk, headers=headers) as socket:
        await socket.say(LONG)
        ended = (await socket.until("reply.ended"))["message"]
    assert ended["status"] == Status.ERROR and words in ended["error"]
    assert "Try again" not in ended["error"] and "maximum context length" not in ended["error"]
    question, reply = await saved(conversation)
    assert question.content == LONG and reply.error == ended["error"]


async def test_a_short_message_to_the_same_model_is_answered(owner, conversation, model_server):
    model_server.config.context_window = 100
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Hello")
        ended = (await socket.until("reply.ended"))["message"]
    # Answered, up to where the small window is full.
    assert ended["status"] in (Status.COMPLETE, Status.TRUNCATED) and ended["content"]


async def test_an_answer_closed_before_anything_was_written_names_the_likely_cause(
    owner, conversation
):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Hello [[sim:fault=empty]]")
        ended = (await socket.until("reply.ended"))["message"]
    assert ended["status"] == Status.ERROR
    assert "closed the answer before writing anything" in ended["error"]
    assert "context window" in ended["error"]
    assert await database_sync_to_async(lambda: conversation.messages.count())() == 2


@pytest.mark.parametrize(
    ("window", "limit", "budget"),
    [
        (2048, None, 1536),  # a quarter of the window for the answer
        (128_000, None, 128_000 - 4096),  # at most ANSWER_ROOM_MAX
        (2048, 300, 1748),  # the answer's own limit
        (2048, 5000, 1024),  # never more than half
    ],
)
def test_the_messages_leave_room_in_the_window_for_the_answer(window, limit, budget):
    assert prompt_budget(window, limit) == budget


async def test_a_long_conversation_on_a_small_window_goes_on_with_its_newest_messages(
    owner, conversation, model_server
):
    """The model's window set in the admin as the server's (llama.cpp's `--n_ctx`): each
    call sends what fits with room for the answer, and the conversation goes on past it."""
    model_server.config.context_window = 600
    await ChatModel.objects.acreate(name=conversation.effective_model, context_window=600)
    async with ChatSocket(owner, conversation.pk) as socket:
        for turn in range(6):
            await socket.say(f"Part {turn}: " + "the mill by the river grinds wheat. " * 25)
            ended = (await socket.until("reply.ended"))["message"]
            assert ended["status"] == Status.COMPLETE, ended["error"]
    sent = model_server.config.requests[-1]["messages"]
    assert sent[-1]["content"].startswith("Part 5") and len(sent) < 12
