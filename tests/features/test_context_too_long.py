"""A conversation longer than the model reads at once: the user is told so in words that say
what to do, not "try again". OpenAI, vLLM and llama.cpp's Python server refuse such a request
with HTTP 400 `context_length_exceeded` (the simulator's `context_window` acts it out); the
Python server, streamed, opens the answer and closes it empty instead (the `empty` fault).
The message sent is kept either way."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from conversations.models import Status
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
    assert ended["status"] == Status.COMPLETE


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
