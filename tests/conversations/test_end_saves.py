"""The ends of replies that end together are saved together: one trip to the database and
one transaction for all of them, and one that cannot be saved fails only itself."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import replies, services
from conversations.models import Message, ModelCall, Role, Status

pytestmark = pytest.mark.django_db(transaction=True)


class Runner:
    """What `EndSaves` asks of a reply's runner: the values of its end."""

    def __init__(self, reply: Message, content: str, hold: threading.Event | None = None):
        self.reply, self.content, self.hold = reply, content, hold
        self.held = threading.Event()  # its end is being saved, and waits for `hold`

    def end(self, outcome):
        if self.hold is not None:
            self.held.set()
            assert self.hold.wait(10)
        final = {"content": self.content, "seq": 1, **outcome.final}
        return services.End(self.reply.pk, self.reply.conversation_id, outcome.status, final)


class Outcome:
    def __init__(self, status=Status.COMPLETE, **final):
        self.status, self.final = status, final


@database_sync_to_async
def streaming_replies(conversation, count: int) -> list[Message]:
    made = []
    for number in range(count):
        Message.objects.create(conversation=conversation, role=Role.USER, content=f"Q{number}")
        made.append(
            Message.objects.create(
                conversation=conversation, role=Role.ASSISTANT, status=Status.STREAMING
            )
        )
    return made


async def test_replies_that_end_while_a_save_is_under_way_share_the_next_trip(
    conversation, monkeypatch
):
    """Before, each reply's end was a trip of its own to the database thread: at 200 replies
    ending together the last `reply.ended` waited behind 199 trips (about 200 ms here)."""
    batches: list[int] = []
    save_ends = services.save_ends

    def counted(ends):
        batches.append(len(ends))
        return save_ends(ends)

    monkeypatch.setattr(services, "save_ends", counted)
    first, *others = await streaming_replies(conversation, 5)
    hold = threading.Event()
    saves = replies.EndSaves()
    held = Runner(first, "first", hold)
    saving = [saves.save(held, Outcome())]
    # The first trip is under way, held in the database thread.
    assert await asyncio.to_thread(held.held.wait, 10)
    saving += [
        saves.save(Runner(reply, f"answer {n}"), Outcome()) for n, reply in enumerate(others)
    ]
    hold.set()
    saved = await asyncio.gather(*saving)
    assert batches == [1, 4]
    assert [m.status for m in saved] == [Status.COMPLETE] * 5
    assert [m.content for m in saved] == ["first"] + [f"answer {n}" for n in range(4)]


async def test_an_end_that_cannot_be_saved_fails_only_its_own_reply(conversation):
    replies_ = await streaming_replies(conversation, 3)
    saves = replies.EndSaves()
    outcomes = [Outcome(), Outcome(prompt_tokens=-1), Outcome(Status.STOPPED)]
    saving = [
        saves.save(Runner(reply, "text"), outcome)
        for reply, outcome in zip(replies_, outcomes, strict=True)
    ]
    results = await asyncio.gather(*saving, return_exceptions=True)
    assert results[0].status == Status.COMPLETE
    assert isinstance(results[1], Exception)
    assert results[2].status == Status.STOPPED

    @database_sync_to_async
    def statuses():
        return [Message.objects.get(pk=reply.pk).status for reply in replies_]

    assert await statuses() == [Status.COMPLETE, Status.STREAMING, Status.STOPPED]


async def test_a_runner_that_fails_to_give_its_end_fails_only_itself(conversation):
    class Broken(Runner):
        def end(self, outcome):
            raise RuntimeError("no end")

    good, bad = await streaming_replies(conversation, 2)
    saves = replies.EndSaves()
    results = await asyncio.gather(
        saves.save(Runner(good, "fine"), Outcome()),
        saves.save(Broken(bad, ""), Outcome()),
        return_exceptions=True,
    )
    assert results[0].content == "fine"
    assert isinstance(results[1], RuntimeError)


@database_sync_to_async
def replies_with_calls(conversation, count: int) -> list[Message]:
    made = []
    for number in range(count):
        Message.objects.create(conversation=conversation, role=Role.USER, content=f"Q{number}")
        call = ModelCall.objects.create(
            user_id=conversation.user_id, conversation_id=conversation.pk, model="sim"
        )
        made.append(
            Message.objects.create(
                conversation=conversation,
                role=Role.ASSISTANT,
                status=Status.STREAMING,
                model_call=call,
            )
        )
    return made


def ledger_end(reply: Message, status: str, prompt: int, completion: int, **extra):
    final = {"content": "text", "prompt_tokens": prompt, "completion_tokens": completion, **extra}
    return services.End(reply.pk, reply.conversation_id, status, final, reply.model_call_id)


async def test_a_few_ends_update_their_calls_each_and_many_take_one_statement(conversation):
    """The ledger's rows of the ends were a `bulk_update` (a CASE per row and field), two thirds
    of the ORM's work of saving 50 ends together; many first calls now copy what their replies
    were just saved with, in one UPDATE however many, while a few take an UPDATE each (the
    copy cost a single end 2.8 ms of the ORM's work against 0.2), and a continuation keeps
    its own tokens."""

    def calls_updated(queries) -> int:
        return sum(
            1
            for q in queries.captured_queries
            if q["sql"].startswith("UPDATE") and "conversations_modelcall" in q["sql"].split()[1]
        )

    @database_sync_to_async
    def save(ends):
        with CaptureQueriesContext(connection) as queries:
            saved = services.save_ends(ends)
        return saved, calls_updated(queries)

    many = await replies_with_calls(conversation, services.COPY_CALLS_FROM + 3)
    saved, statements = await save([ledger_end(r, Status.COMPLETE, 5, 7) for r in many])
    assert statements == 1
    assert {(m.usage, m.model_call.status) for m in saved} == {((5, 7, False), Status.COMPLETE)}
    six = await replies_with_calls(conversation, 6)
    ends = [ledger_end(r, Status.COMPLETE, 10 + n, 20 + n) for n, r in enumerate(six)]
    ends[1] = ledger_end(six[1], Status.STOPPED, 11, 3, usage_estimated=True)
    # A continuation: the reply's copy adds up its calls, the ledger's row takes this one's.
    ends[2].call_usage = {"prompt_tokens": 4, "completion_tokens": 2}
    saved, statements = await save(ends)
    assert statements == 6
    assert [m.status for m in saved] == [Status.COMPLETE, Status.STOPPED] + [Status.COMPLETE] * 4

    @database_sync_to_async
    def ledger():
        calls = ModelCall.objects.in_bulk([r.model_call_id for r in six])
        return [
            (c.prompt_tokens, c.completion_tokens, c.estimated, c.status, c.ended_at is not None)
            for c in (calls[r.model_call_id] for r in six)
        ]

    assert await ledger() == [
        (10, 20, False, Status.COMPLETE, True),
        (11, 3, True, Status.STOPPED, True),
        (4, 2, False, Status.COMPLETE, True),
        (13, 23, False, Status.COMPLETE, True),
        (14, 24, False, Status.COMPLETE, True),
        (15, 25, False, Status.COMPLETE, True),
    ]
