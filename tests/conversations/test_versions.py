"""Versions and branches over the socket: nothing a user wrote or read is ever lost.

Regenerate and Edit add versions beside what they redo; `version.select` chooses one, every
tab follows, and what a model is sent is the active path only.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from conversations import selectors, services
from conversations.models import Message, Role, Status
from simulator.config import Fault

from .chat_client import ChatSocket, saved, settle

pytestmark = [pytest.mark.django_db(transaction=True)]


async def exchange(socket: ChatSocket, text: str) -> tuple[dict, dict]:
    """Say `text`; the stored question and the ended answer."""
    await socket.say(text)
    question = (await socket.until("message.created"))["message"]
    answer = (await socket.until("reply.ended"))["message"]
    return question, answer


@database_sync_to_async
def active_path(conversation) -> list[str]:
    page, _ = selectors.message_page(conversation)
    return [m.content for m in page if m.role == Role.USER]


def sent_to_model(model_server) -> list[str]:
    """The user messages of the last request that reached the model."""
    return [
        m["content"] for m in model_server.config.requests[-1]["messages"] if m["role"] == "user"
    ]


async def test_editing_an_earlier_message_branches_and_sends_only_its_path(
    owner, conversation, model_server
):
    async with ChatSocket(owner, conversation.pk) as socket:
        first, _ = await exchange(socket, "One")
        await exchange(socket, "Two")
        await exchange(socket, "Three")
        await socket.send(
            {"type": "message.edit", "client_id": "e1", "message_id": first["id"], "content": "Uno"}
        )
        edited = (await socket.until("message.created"))["message"]
        await socket.until("reply.ended")
        assert sent_to_model(model_server) == ["Uno"]
        # What follows goes on from the new branch.
        await exchange(socket, "Dos")
        assert sent_to_model(model_server) == ["Uno", "Dos"]
    assert edited["parent_id"] is None and (edited["version"], edited["versions"]) == (2, 2)
    stored = await saved(conversation)
    assert len(stored) == 10  # the old branch stays whole: One, Two, Three and their answers
    assert [m.content for m in stored if m.role == Role.USER] == [
        "One",
        "Two",
        "Three",
        "Uno",
        "Dos",
    ]
    assert await active_path(conversation) == ["Uno", "Dos"]


async def test_regenerating_sends_the_path_up_to_the_question(owner, conversation, model_server):
    async with ChatSocket(owner, conversation.pk) as socket:
        await exchange(socket, "First question")
        question, answer = await exchange(socket, "Second question")
        await socket.send({"type": "reply.regenerate", "client_id": "r1"})
        again = (await socket.until("message.created"))["message"]
        await socket.until("reply.ended")
    request = model_server.config.requests[-1]["messages"]
    assert [m["role"] for m in request if m["role"] != "system"] == ["user", "assistant", "user"]
    assert again["parent_id"] == question["id"] == answer["parent_id"]
    assert (again["version"], again["versions"]) == (2, 2)


async def test_choosing_a_version_is_seen_by_every_tab_and_kept(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as one, ChatSocket(owner, conversation.pk) as two:
        await one.until("ready")
        await two.until("ready")
        question, first = await exchange(one, "Pick one")
        await one.send({"type": "reply.regenerate", "client_id": "r1"})
        second = (await one.until("reply.ended"))["message"]
        await one.send({"type": "version.select", "message_id": second["id"], "version": 1})
        await one.until("version.selected")
        await two.until("version.selected")
        follow_up, _ = await exchange(one, "Follow-up")
        assert follow_up["parent_id"] == first["id"]

        await two.send({"type": "version.select", "message_id": first["id"], "version": 2})
        seen_by_one = await one.until("version.selected")
        seen_by_two = await two.until("version.selected")
        assert seen_by_one == seen_by_two
        assert seen_by_one["after_id"] == question["id"] and seen_by_one["from_id"] is None
        assert [m["id"] for m in seen_by_one["messages"]] == [second["id"]]
        assert await active_path(conversation) == ["Pick one"]

        await two.send({"type": "version.select", "message_id": second["id"], "version": 1})
        back = await one.until("version.selected")
    shown = back["messages"]
    assert [m["id"] for m in shown][:2] == [first["id"], follow_up["id"]] and len(shown) == 3
    assert (shown[0]["version"], shown[0]["versions"]) == (1, 2)
    # A reload, another tab: the same path, from the database.
    assert await active_path(conversation) == ["Pick one", "Follow-up"]
    async with ChatSocket(owner, conversation.pk) as three:
        await three.until("ready")
        await three.send({"type": "subscribe", "after_id": None})
        sync = await three.until("sync")
    assert [m["id"] for m in sync["messages"]] == [question["id"]] + [m["id"] for m in shown]


async def test_a_version_that_does_not_exist_is_refused(owner, outsider, conversation):
    other = await database_sync_to_async(services.start_conversation)(user=owner)
    async with ChatSocket(owner, other.pk) as socket:
        _, answer = await exchange(socket, "Elsewhere")
    async with ChatSocket(owner, conversation.pk) as socket:
        _, mine = await exchange(socket, "Here")
        for frame in (
            {"type": "version.select", "message_id": mine["id"], "version": 2},
            {"type": "version.select", "message_id": mine["id"], "version": 0},
            {"type": "version.select", "message_id": answer["id"], "version": 1},
            {"type": "version.select", "message_id": mine["id"]},
        ):
            await socket.send(frame)
            error = await socket.until("error")
            assert error["code"] in ("no_such_version", "invalid")
        assert not socket.of_type("version.selected")


async def test_a_streaming_reply_goes_on_in_its_branch_and_is_live_when_shown_again(
    owner, conversation, model_server
):
    async with ChatSocket(owner, conversation.pk) as socket:
        question, first = await exchange(socket, "Tell me [[sim:tokens=60]]")
        model_server.config.tokens_per_second = 40
        await socket.send({"type": "reply.regenerate", "client_id": "r1"})
        streaming = (await socket.until("message.created"))["message"]
        await socket.until("reply.delta")
        # Away to the first version, while the second streams...
        await socket.send({"type": "version.select", "message_id": first["id"], "version": 1})
        away = await socket.until("version.selected")
        assert [m["id"] for m in away["messages"]] == [first["id"]]
        # ... and back: its text so far, then it goes on live.
        await socket.send({"type": "version.select", "message_id": first["id"], "version": 2})
        back = await socket.until("version.selected")
        assert back["messages"][0]["id"] == streaming["id"]
        assert back["messages"][0]["status"] == Status.STREAMING
        state = await socket.until("reply.state")
        assert state["reply_id"] == streaming["id"]
        ended = (await socket.until("reply.ended"))["message"]
    assert ended["status"] == Status.COMPLETE
    assert socket.streamed_text(streaming["id"]) == ended["content"]
    assert (ended["version"], ended["versions"]) == (2, 2)
    stored = await saved(conversation)
    assert [m.pk for m in stored] == [question["id"], first["id"], streaming["id"]]


async def test_a_continuation_that_fails_keeps_what_was_there(owner, conversation, model_server):
    conversation.max_completion_tokens = 5
    await database_sync_to_async(conversation.save)()
    async with ChatSocket(owner, conversation.pk) as socket:
        _, cut = await exchange(socket, "Explain everything")
        model_server.config.fault = Fault(kind="drop", after=2)
        await socket.send({"type": "reply.continue", "client_id": "c1"})
        ended = (await socket.until("reply.ended"))["message"]
    await settle()
    assert ended["id"] == cut["id"] and ended["status"] == Status.ERROR
    assert ended["content"].startswith(cut["content"]) and ended["error"]
    reply = await database_sync_to_async(Message.objects.get)(pk=cut["id"])
    assert reply.content == ended["content"] and reply.status == Status.ERROR


async def test_continue_and_regenerate_act_on_the_active_path(owner, conversation):
    conversation.max_completion_tokens = 5
    await database_sync_to_async(conversation.save)()
    async with ChatSocket(owner, conversation.pk) as socket:
        _, cut = await exchange(socket, "Explain everything")
        await socket.send({"type": "reply.regenerate", "client_id": "r1"})
        second = (await socket.until("reply.ended"))["message"]
        await socket.send({"type": "version.select", "message_id": second["id"], "version": 1})
        await socket.until("version.selected")
        await socket.send({"type": "reply.continue", "client_id": "c1"})
        going_on = (await socket.until("message.updated"))["message"]
        await socket.until("reply.ended")
    assert going_on["id"] == cut["id"]


async def test_branching_copies_the_path_up_to_a_message_into_a_new_conversation(
    client, owner, outsider, conversation
):
    async with ChatSocket(owner, conversation.pk) as socket:
        await exchange(socket, "Keep this")
        question, _ = await exchange(socket, "And this")
        await exchange(socket, "Not this")
    conversation.temperature = 0.3
    await database_sync_to_async(conversation.save)()

    @database_sync_to_async
    def branch(user, message_id):
        client.force_login(user)
        return client.post(reverse("branch_conversation", args=[conversation.pk, message_id]))

    assert (await branch(outsider, question["id"])).status_code == 404
    response = await branch(owner, question["id"])
    assert response.status_code == 302

    @database_sync_to_async
    def created():
        new = owner.conversations.exclude(pk=conversation.pk).get()
        page, _ = selectors.message_page(new)
        return new, page

    new, page = await created()
    assert response["Location"] == reverse("conversation", args=[new.pk])
    assert [m.content for m in page if m.role == Role.USER] == ["Keep this", "And this"]
    assert page[-1].pk != question["id"] and len(page) == 3
    assert new.temperature == 0.3 and new.persona_id == conversation.persona_id


async def test_a_branch_made_from_a_question_gets_its_answer_by_regenerate(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as socket:
        await exchange(socket, "Keep this")
        question, _ = await exchange(socket, "Answer this again")
    new = await database_sync_to_async(services.branch_conversation)(
        user=owner, conversation_id=conversation.pk, message_id=question["id"]
    )
    async with ChatSocket(owner, new.pk) as socket:
        await socket.send({"type": "reply.regenerate", "client_id": "r1"})
        created = (await socket.until("message.created"))["message"]
        ended = (await socket.until("reply.ended"))["message"]
    assert ended["status"] == Status.COMPLETE and ended["id"] == created["id"]
    assert "Answer this again" in ended["content"]
    path = await active_path(new)
    assert path == ["Keep this", "Answer this again"]
    stored = await saved(new)
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT]
    assert created["parent_id"] == stored[2].pk
