"""The limit on an answer's length, under the name its server reads: OpenAI's own API takes
`max_completion_tokens` (its reasoning models refuse `max_tokens`); the local servers take
`max_tokens`, and llama-cpp-python's reads nothing else: told `max_completion_tokens`, it
wrote on to the end of its context, and a conversation's title with it. The simulator acts
that server out (`limit_fields`), through the real SDK over HTTP."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from conversations import llm
from conversations.models import Status
from tests.conversations.chat_client import ChatSocket

from .test_model_titles import title_requests

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer"),
]


@pytest.mark.parametrize(
    ("base_url", "field"),
    [
        (None, "max_completion_tokens"),
        ("https://api.openai.com/v1", "max_completion_tokens"),
        ("https://team.openai.azure.com/openai/v1", "max_completion_tokens"),
        ("http://127.0.0.1:11434/v1", "max_tokens"),
        ("http://llama.lan:8080/v1", "max_tokens"),
        ("https://openrouter.ai/api/v1", "max_tokens"),
    ],
)
def test_each_server_is_told_the_limit_under_the_name_it_reads(settings, base_url, field):
    settings.DEMO_MODE = False
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = base_url
    assert llm.output_limit(5) == {field: 5}
    request = llm.build_request({"model": "m", "temperature": 0.7, "max_completion_tokens": 5}, [])
    assert request[field] == 5 and len({"max_tokens", "max_completion_tokens"} & set(request)) == 1


async def test_a_server_that_reads_only_max_tokens_stops_at_the_limit(
    owner, conversation, model_server, settings
):
    model_server.config.limit_fields = ("max_tokens",)  # as llama-cpp-python's server
    settings.CHAT_MODEL_TITLES = True
    conversation.max_completion_tokens = 5
    await database_sync_to_async(conversation.save)()
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Explain everything there is to know about bread, at length")
        ended = (await socket.until("reply.ended"))["message"]
        await socket.until("conversation.updated")  # the model's title
    assert ended["status"] == Status.TRUNCATED and ended["finish_reason"] == "length"
    assert ended["usage"]["completion_tokens"] == 5
    answer = model_server.config.requests[0]
    assert answer["max_tokens"] == 5 and "max_completion_tokens" not in answer
    [title] = title_requests(model_server)
    assert title["max_tokens"] == llm.TITLE_MAX_TOKENS
