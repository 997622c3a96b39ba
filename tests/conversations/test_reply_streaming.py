"""A reply streams from the model over the socket and is saved, whatever happens on the way."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from conversations import replies, services
from conversations.models import Message, Role, Status

from .chat_client import ChatSocket, saved, settle

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_a_reply_streams_and_is_saved_complete_with_usage(owner, conversation, model_server):
    model_server.config.tokens_per_second = 200
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Tell me about pasta")
        ended = await socket.until("reply.ended")
    await settle()
    user_message, reply = await saved(conversation)
    assert user_message.role == Role.USER and user_message.content == "Tell me about pasta"
    assert reply.status == Status.COMPLETE and reply.finish_reason == "stop"
    assert reply.completion_tokens > 0 and reply.prompt_tokens > 0
    assert "Tell me about pasta" in reply.content
    assert socket.streamed_text(reply.pk) == reply.content
    deltas = socket.of_type("reply.delta")
    assert 5 < len(deltas) < reply.completion_tokens, "tokens are sent in time batches"
    assert ended["message"]["usage"]["completion_tokens"] == reply.completion_tokens
    assert reply.parameters["system_prompt"] == conversation.system_prompt
    assert reply.parameters["temperature"] == conversation.temperature


async def test_the_second_turn_sends_the_first_to_the_model(owner, conversation, model_server):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("My name is Minji")
        await socket.until("reply.ended")
        await socket.say("What is my name?")
        await socket.until("reply.ended")
    await settle()
    sent = model_server.config.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": conversation.system_prompt}
    assert [m["role"] for m in sent[1:]] == ["user", "assistant", "user"]
    assert sent[1]["content"] == "My name is Minji"
    messages = await saved(conversation)
    assert "My name is Minji" in messages[-1].content  # the simulator quotes earlier turns
    assert messages[-1].context_from_id == messages[0].pk


async def test_the_conversation_gets_a_title_from_the_first_message(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("김치찌개 끓이는 법 알려줘")
        updated = await socket.until("conversation.updated")
    assert updated["conversation"]["title"] == "김치찌개 끓이는 법 알려줘"


FAULTS = [
    ("http:500", "internal error"),
    ("http:429", "busy"),
    ("http:401", "API key"),
    ("http:404", "not found"),
    ("drop:3", "connection"),
    ("stall:3", "stopped responding"),
    ("no_finish", "broke off"),
    ("empty", "closed the answer before writing anything"),
    ("broken_chunk:3", "could not be read"),
    ("error_event:3", "reported an error while answering. Try again."),
]


@pytest.mark.parametrize(("fault", "words"), FAULTS)
async def test_every_model_failure_ends_in_error_keeping_what_arrived(
    owner, conversation, fault, words
):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say(f"Explain soup [[sim:fault={fault}]]")
        ended = await socket.until("reply.ended")
    await settle()
    user_message, reply = await saved(conversation)
    assert user_message.content.startswith("Explain soup")
    assert reply.status == Status.ERROR
    assert words in reply.error
    assert "Traceback" not in reply.error and "sk-test" not in reply.error
    assert ended["message"]["error"] == reply.error
    assert reply.content == socket.streamed_text(reply.pk)
    if fault.startswith(("drop", "stall", "broken", "error_event")):
        assert reply.content, "the text that arrived before the failure is kept"


async def test_a_content_filter_ends_as_filtered(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Something [[sim:fault=content_filter:4]]")
        await socket.until("reply.ended")
    await settle()
    reply = (await saved(conversation))[-1]
    assert reply.status == Status.FILTERED and reply.finish_reason == "content_filter"


async def test_stop_keeps_what_arrived_and_marks_it_stopped(owner, conversation, model_server):
    model_server.config.tokens_per_second = 40
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("A long story please [[sim:tokens=400]]")
        await socket.until("reply.delta")
        await socket.until("reply.delta")
        await socket.send({"type": "reply.stop"})
        ended = await socket.until("reply.ended")
    await settle()
    reply = (await saved(conversation))[-1]
    assert reply.status == Status.STOPPED == ended["message"]["status"]
    assert reply.content and reply.content == socket.streamed_text(reply.pk)
    assert reply.completion_tokens is None or reply.completion_tokens < 400
    assert model_server.activity.disconnects >= 1, "the model's stream was closed"
    assert model_server.activity.open_responses == 0


async def test_regenerate_adds_a_version_and_keeps_the_earlier_reply(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Give me a tip")
        first = (await socket.until("reply.ended"))["message"]
        await socket.send({"type": "reply.regenerate", "client_id": "regen-1"})
        second = (await socket.until("reply.ended"))["message"]
    await settle()
    assert not socket.of_type("messages.deleted")
    question, kept, new = await saved(conversation)
    assert kept.pk == first["id"] and kept.status == Status.COMPLETE and kept.content
    assert new.pk == second["id"] and new.status == Status.COMPLETE
    assert kept.parent_id == new.parent_id == question.pk
    assert (second["version"], second["versions"]) == (2, 2)


async def test_a_reply_cut_by_the_token_limit_is_truncated(owner, conversation):
    conversation.max_completion_tokens = 5
    await database_sync_to_async(conversation.save)()
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Explain everything")
        ended = await socket.until("reply.ended")
    assert ended["message"]["status"] == Status.TRUNCATED
    assert ended["message"]["finish_reason"] == "length"
    assert ended["message"]["usage"]["completion_tokens"] == 5


async def test_continue_extends_the_same_truncated_reply(owner, conversation):
    conversation.max_completion_tokens = 5
    await database_sync_to_async(conversation.save)()
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Explain everything")
        cut = (await socket.until("reply.ended"))["message"]
        await socket.send({"type": "reply.continue", "client_id": "more-1"})
        going_on = (await socket.until("message.updated"))["message"]
        ended = (await socket.until("reply.ended"))["message"]
    messages = await saved(conversation)
    assert len(messages) == 2 and not socket.of_type("message.created")[2:]
    assert going_on["id"] == ended["id"] == cut["id"] == messages[1].pk
    assert going_on["status"] == Status.STREAMING and going_on["seq"] == cut["seq"]
    assert ended["content"].startswith(cut["content"]) and len(ended["content"]) > len(
        cut["content"]
    )
    assert socket.streamed_text(cut["id"]) == ended["content"]
    assert ended["usage"]["completion_tokens"] == 10


async def test_json_mode_replies_with_valid_json(owner, conversation, model_server):
    conversation.response_format = "json_object"
    conversation.system_prompt = "You are terse."
    await database_sync_to_async(conversation.save)()
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("List three fruits")
        ended = await socket.until("reply.ended")
    assert ended["message"]["status"] == Status.COMPLETE
    assert isinstance(json.loads(ended["message"]["content"]), dict)
    sent = model_server.config.requests[-1]
    assert sent["response_format"] == {"type": "json_object"}
    assert "json" in sent["messages"][0]["content"].lower()


async def test_logprobs_are_streamed_and_stored_when_on(owner, conversation):
    conversation.logprobs, conversation.top_logprobs = True, 3
    await database_sync_to_async(conversation.save)()
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Hello")
        ended = await socket.until("reply.ended")
    streamed = [item for frame in socket.of_type("reply.delta") for item in frame["logprobs"]]
    assert "".join(item["token"] for item in streamed) == ended["message"]["content"]
    assert all(len(item["top_logprobs"]) == 3 for item in streamed)
    # The end says the reply has them; the tokens themselves are fetched over HTTP.
    assert ended["message"]["has_logprobs"] and "logprobs" not in ended["message"]
    stored = await database_sync_to_async(Message.objects.get)(pk=ended["message"]["id"])
    assert stored.logprobs == streamed


async def test_a_resent_frame_stores_nothing_twice(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Only once", client_id="same-id")
        await socket.until("reply.ended")
        await socket.say("Only once", client_id="same-id")
        again = await socket.until("sync")
    await settle()
    messages = await saved(conversation)
    assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT]
    assert [m["id"] for m in again["messages"]] == [m.pk for m in messages]
    assert len(socket.of_type("message.created")) == 2


async def test_with_no_key_and_no_base_url_the_built_in_simulator_answers(
    owner, conversation, settings
):
    settings.DEMO_MODE = True
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Are you real?")
        ended = await socket.until("reply.ended")
    assert ended["message"]["status"] == Status.COMPLETE
    assert "Are you real?" in ended["message"]["content"]


def test_a_title_leaves_out_simulator_directives():
    assert services.title_from("Show me pasta [[sim:tps=200]]") == "Show me pasta"


async def test_a_reply_is_saved_even_when_the_control_channel_breaks(
    owner, conversation, model_server, monkeypatch
):
    async def broken_answer(layer, message):
        raise ConnectionError("the channel layer went away")

    monkeypatch.setattr(replies, "_answer", broken_answer)
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.say("Still saved? [[sim:tokens=30]]")
        created = await socket.until("message.created")
        await socket.send({"type": "reply.stop"})  # lost: the listener fails on it
        ended = await socket.until("reply.ended")
        monkeypatch.undo()
        model_server.config.tokens_per_second = 100
        await socket.say("And stopped now? [[sim:tokens=400]]")
        await socket.until("reply.delta")
        await asyncio.sleep(1.2)  # the listener listens again after a second
        await socket.send({"type": "reply.stop"})
        stopped = await socket.until("reply.ended")
    assert created["message"]["role"] == "user"
    assert ended["message"]["status"] == Status.COMPLETE
    assert (await saved(conversation))[1].content == ended["message"]["content"] != ""
    assert stopped["message"]["status"] == Status.STOPPED


async def deltas_of_two_replies_at_once(owner, model_server) -> list[int]:
    """Two replies streaming together in this process: how many deltas each one sent."""
    model_server.config.tokens_per_second = 100
    first, second = [
        await database_sync_to_async(services.start_conversation)(user=owner) for _ in range(2)
    ]
    async with ChatSocket(owner, first.pk) as one, ChatSocket(owner, second.pk) as two:
        await one.say("First [[sim:tokens=80]]")
        await two.say("Second [[sim:tokens=80]]")
        ended = [await one.until("reply.ended"), await two.until("reply.ended")]
    counts = []
    for socket, end in zip([one, two], ended, strict=True):
        reply = end["message"]
        assert socket.streamed_text(reply["id"]) == reply["content"] != ""
        counts.append(len(socket.of_type("reply.delta")))
    return counts


async def test_replies_streaming_at_once_share_the_processs_budget_of_deltas(
    owner, personas, model_server, settings
):
    settings.CHAT_DELTA_SECONDS = 0.01
    settings.CHAT_DELTAS_PER_SECOND = 10_000
    unhurried = await deltas_of_two_replies_at_once(owner, model_server)
    settings.CHAT_DELTAS_PER_SECOND = 4  # two replies: one delta each half second
    budgeted = await deltas_of_two_replies_at_once(owner, model_server)
    assert min(unhurried) > 30
    assert max(budgeted) <= 5, "0.8 s of tokens, the first at once, then every 0.5 s"


async def test_the_end_of_a_stream_goes_out_with_its_last_tokens(
    owner, conversation, model_server, settings
):
    """After a token it had to wait for, the reader slept a whole delta interval before it
    read on, so the stream's end, right behind the last token, waited up to that long after
    the last token had gone out. It now reads on when the next delta is due."""
    settings.CHAT_DELTA_SECONDS = 0.6  # shorter than the time between two tokens
    await database_sync_to_async(type(conversation).objects.filter(pk=conversation.pk).update)(
        max_completion_tokens=4
    )
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.until("ready")
        await socket.say("Pace [[sim:tps=1.5]]")
        loop = asyncio.get_running_loop()
        last_delta = None
        while True:
            frame = await socket.receive(timeout=10)
            if frame["type"] == "reply.delta":
                last_delta = loop.time()
            elif frame["type"] == "reply.ended":
                ended = loop.time()
                break
    assert last_delta is not None
    assert ended - last_delta < 0.3, f"reply.ended {ended - last_delta:.2f} s after the last delta"
