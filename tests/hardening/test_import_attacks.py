"""Attacks with an import file: choosing what the admin controls, numbers and text the database
cannot hold, files that are cheap to send and costly to store. Each file is refused with a
sentence and stores nothing, or is stored without the part that was not the user's to choose."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from conversations import exports, imports, usage
from conversations.models import Conversation, Message, Persona, Role
from tests.features.ledger import ledger_reply

pytestmark = pytest.mark.django_db


def user_message(content: str = "How long do I boil an egg?", **fields: Any) -> dict[str, Any]:
    return {"role": "user", "content": content, **fields}


def reply(content: str = "Nine minutes for a hard one.", **fields: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": content,
        "status": "complete",
        "usage": {"prompt_tokens": 12, "completion_tokens": 9},
        "parameters": {"model": "gpt-4o-mini", "temperature": 0.7},
        **fields,
    }


def a_conversation(**fields: Any) -> dict[str, Any]:
    return {
        "title": "Eggs",
        "persona": "셰프",
        "settings": {"temperature": 0.4},
        "messages": [user_message(), reply()],
        **fields,
    }


def export_file(*conversations: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": exports.FORMAT,
        "version": exports.VERSION,
        "conversations": list(conversations) or [a_conversation()],
    }


def as_bytes(document: dict[str, Any], **raw: str) -> bytes:
    """The file as JSON; each `"<name>"` string in it replaced by `raw[name]` as written, for
    what `json.dumps` will not write (`1e400`)."""
    text = json.dumps(document)
    for name, literal in raw.items():
        text = text.replace(json.dumps(f"<{name}>"), literal)
    return text.encode()


def post(client, data: bytes):
    upload = SimpleUploadedFile("export.json", data, content_type="application/json")
    return client.post(reverse("import_conversations"), {"file": upload})


@pytest.fixture
def importer(client, outsider, personas):
    client.force_login(outsider)
    return outsider


@pytest.fixture
def chef(personas) -> Persona:
    chef = Persona.objects.get(name_en="Chef")
    chef.model = "llama3.1:8b"
    chef.max_completion_tokens = 800
    chef.save()
    return chef


def assert_refused(response, *parts: str) -> str:
    """Refused with the import's sentence (each of `parts` in it), and nothing stored."""
    assert response.status_code == 400, response.status_code
    sentence = response.context["import_error"]
    assert sentence.startswith("This file cannot be imported:"), sentence
    for part in parts:
        assert part in sentence, sentence
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()
    return sentence


def assert_no_traceback_logged(caplog) -> None:
    logged = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not logged, [r.getMessage() for r in logged]


# What the admin controls.


def test_an_import_cannot_choose_the_model_or_the_token_limit(client, importer, chef):
    """The file names a model of its own (any name, sent as is to the model server) and the
    largest token limit there is. Without the fix both were copied into the conversation and
    every reply in it was requested with them; the persona's choices apply instead."""
    conversation = a_conversation(
        settings={"model": "gpt-4o", "max_completion_tokens": 200_000, "temperature": 0.4}
    )
    response = post(client, as_bytes(export_file(conversation)))

    assert response.status_code == 302
    imported = Conversation.objects.get(user=importer)
    assert imported.persona == chef
    assert (imported.model, imported.max_completion_tokens) == ("llama3.1:8b", 800)
    # What is the user's to choose comes along.
    assert imported.temperature == 0.4


def test_a_file_naming_an_unknown_persona_gets_the_default_personas_model_and_limit(
    client, importer, personas
):
    """A persona this server does not have is no reason to take the file's model: the default
    persona's model and limit apply, as for a chat started here."""
    default = Persona.objects.default()
    default.model, default.max_completion_tokens = "mistral:7b", 300
    default.save()
    conversation = a_conversation(
        persona="Nobody here", settings={"model": "o1-pro", "max_completion_tokens": 100_000}
    )
    response = post(client, as_bytes(export_file(conversation)))

    assert response.status_code == 302
    imported = Conversation.objects.get(user=importer)
    assert (imported.model, imported.max_completion_tokens) == ("mistral:7b", 300)


def test_imported_token_usage_counts_in_no_usage_figure(client, importer, personas):
    """Usage written in a file was spent elsewhere, or never: without the fix it entered the
    conversation's total and the admin's usage per user and day, so a user could inflate (or,
    by deleting, deflate) what the operator bills or limits. Replies made here still count."""
    huge = {"prompt_tokens": 2_000_000_000, "completion_tokens": 2_000_000_000}
    conversation = a_conversation(messages=[user_message(), reply(usage=huge)])
    assert post(client, as_bytes(export_file(conversation))).status_code == 302
    imported = Conversation.objects.get(user=importer)
    assert usage.conversation_totals(imported) == usage.Totals(0, 0, 0)
    assert usage.daily_usage(since=imported.created_at.date(), user_id=importer.pk) == []

    ledger_reply(imported, 30, 4)  # a reply made here, and its call's row in the ledger
    assert usage.conversation_totals(imported) == usage.Totals(30, 4, 1)
    [today] = usage.daily_usage(since=imported.created_at.date(), user_id=importer.pk)
    assert today.totals == usage.Totals(30, 4, 1)


def test_the_markdown_exports_token_total_counts_no_imported_tokens(client, importer, personas):
    """The Markdown export's total is a usage figure too; each reply still shows what its
    file recorded."""
    huge = {"prompt_tokens": 1_000_000, "completion_tokens": 2_000_000}
    conversation = a_conversation(messages=[user_message(), reply(usage=huge)])
    assert post(client, as_bytes(export_file(conversation))).status_code == 302
    imported = Conversation.objects.get(user=importer)
    markdown = client.get(reverse("export_conversation", args=[imported.pk, "md"])).content
    assert "- Tokens: 0 (0 in · 0 out)" in markdown.decode()
    assert "1000000 in · 2000000 out tokens" in markdown.decode()


def test_the_admins_conversation_list_counts_no_imported_tokens(
    client, importer, personas, django_user_model
):
    """The admin's list of conversations shows tokens per conversation: the same rule."""
    huge = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}
    conversation = a_conversation(messages=[user_message(), reply(usage=huge)])
    assert post(client, as_bytes(export_file(conversation))).status_code == 302
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(admin)
    page = client.get(reverse("admin:conversations_conversation_changelist"))
    [row] = page.context["cl"].result_list
    assert page.context["cl"].model_admin.token_count(row) == 0


# Numbers.

NUMBERS_OUT_OF_RANGE = {
    "a temperature of 1e400": (
        {"settings": {"temperature": "<n>"}},
        "1e400",
        "conversations[0].settings.temperature",
    ),
    "a negative token limit": (
        {"settings": {"max_completion_tokens": "<n>"}},
        "-5",
        "conversations[0].settings.max_completion_tokens",
    ),
    "a token limit over the largest": (
        {"settings": {"max_completion_tokens": "<n>"}},
        str(10**30),
        "conversations[0].settings.max_completion_tokens",
    ),
    "alternatives per token over 20": (
        {"settings": {"logprobs": True, "top_logprobs": "<n>"}},
        "50",
        "conversations[0].settings.top_logprobs",
    ),
    "usage of 1e400": (
        {"messages": [user_message(), reply(usage={"prompt_tokens": "<n>"})]},
        "1e400",
        "conversations[0].messages[1].usage.prompt_tokens",
    ),
    "a logprob of a 400-digit number": (
        {"messages": [user_message(), reply(logprobs=[{"token": "Hi", "logprob": "<n>"}])]},
        "-" + "9" * 400,
        "conversations[0].messages[1].logprobs[0].logprob",
    ),
    "1e400 in a reply's parameters": (
        {"messages": [user_message(), reply(parameters={"temperature": "<n>"})]},
        "1e400",
        "conversations[0].messages[1].parameters.temperature",
    ),
    "a huge number deep in the parameters": (
        {"messages": [user_message(), reply(parameters={"seed": ["<n>"]})]},
        str(10**80),
        "conversations[0].messages[1].parameters.seed[0]",
    ),
}


@pytest.mark.parametrize("name", list(NUMBERS_OUT_OF_RANGE))
def test_a_number_out_of_range_is_refused_with_a_sentence(client, importer, caplog, name):
    """A number no setting or column can hold: without the fix `1e400` in the parameters
    reached the database (PostgreSQL refuses "Infinity" in JSON: a 500), a 400-digit logprob
    overflowed in `float()` (a 500), and the rest of the checks answered unevenly. Each one
    is refused with a sentence naming its place, and no traceback is logged."""
    fields, literal, place = NUMBERS_OUT_OF_RANGE[name]
    response = post(client, as_bytes(export_file(a_conversation(**fields)), n=literal))
    assert_refused(response, place)
    assert_no_traceback_logged(caplog)


@pytest.mark.parametrize(
    "moment",
    [
        "2026-02-30T10:00:00Z",
        "2026-01-01T25:00:00Z",
        "2026-01-01T10:00:00+99:00",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+05:00",
    ],
)
def test_a_date_that_does_not_exist_is_refused_with_a_sentence(client, importer, caplog, moment):
    """Well-formed dates that name no moment (or none in UTC, where they are stored):
    without the fix the date parser's own error, or the conversion to UTC, was a 500."""
    conversation = a_conversation(messages=[user_message(created_at=moment), reply()])
    response = post(client, as_bytes(export_file(conversation)))
    assert_refused(response, "conversations[0].messages[0].created_at must be a date and time")
    assert_no_traceback_logged(caplog)


# Text the database cannot store.

LONE_SURROGATE = "\ud83d"  # the first half of 😀, alone
NUL = "\x00"


def places_for(bad: str) -> dict[str, tuple[dict[str, Any], str]]:
    """Every kind of string an import file holds, with `bad` in it, and where it is."""
    text = f"before {bad} after"
    return {
        "the title": ({"title": text}, "conversations[0].title"),
        "the persona's name": ({"persona": text}, "conversations[0].persona"),
        "the system prompt": (
            {"settings": {"system_prompt": text}},
            "conversations[0].settings.system_prompt",
        ),
        "a message": (
            {"messages": [user_message(text), reply()]},
            "conversations[0].messages[0].content",
        ),
        "a reply's error": (
            {"messages": [user_message(), reply(error=text)]},
            "conversations[0].messages[1].error",
        ),
        "a reply's model": (
            {"messages": [user_message(), reply(model=text)]},
            "conversations[0].messages[1].model",
        ),
        "a logprob's token": (
            {"messages": [user_message(), reply(logprobs=[{"token": text, "logprob": -0.1}])]},
            "conversations[0].messages[1].logprobs[0].token",
        ),
        "a value in the parameters": (
            {"messages": [user_message(), reply(parameters={"note": [text]})]},
            "conversations[0].messages[1].parameters.note[0]",
        ),
        "a name in the parameters": (
            {"messages": [user_message(), reply(parameters={text: 1})]},
            "conversations[0].messages[1].parameters",
        ),
    }


@pytest.mark.parametrize("place", list(places_for("")))
def test_a_lone_surrogate_anywhere_is_refused_with_a_sentence(client, importer, caplog, place):
    """`"\\ud83d"` is valid JSON but no text a database stores: without the fix the write
    failed on encoding it (a 500, its traceback logged), wherever it was in the file."""
    fields, where = places_for(LONE_SURROGATE)[place]
    response = post(client, as_bytes(export_file(a_conversation(**fields))))
    assert_refused(response, where, "cannot be stored")
    assert_no_traceback_logged(caplog)


@pytest.mark.parametrize("place", list(places_for("")))
def test_a_nul_character_anywhere_is_refused_with_a_sentence(client, importer, caplog, place):
    """`"\\u0000"` is valid JSON, and SQLite stores it, but PostgreSQL refuses it in text and
    in JSON: without the fix the same file imported on one database and failed with a 500 on
    the other. Refused everywhere, with a sentence."""
    fields, where = places_for(NUL)[place]
    response = post(client, as_bytes(export_file(a_conversation(**fields))))
    assert_refused(response, where, "cannot be stored")
    assert_no_traceback_logged(caplog)


# Files cheap to send and costly to store.


def test_a_file_of_many_empty_messages_is_refused_at_once(client, importer, caplog):
    """The file of the issue: 170,000 empty messages in 4.9 MB. Without the fix it was stored
    (9 s holding the database's write lock); it is refused by its number of messages, before
    any of them is checked one by one."""
    empties = [{"role": "user", "content": ""}] * 5000
    document = export_file(*[{"messages": empties}] * 34)
    data = json.dumps(document, separators=(",", ":")).encode()
    assert len(data) < exports.MAX_IMPORT_BYTES

    started = time.perf_counter()
    response = post(client, data)
    elapsed = time.perf_counter() - started

    assert_refused(response, f"more than {exports.MAX_IMPORT_MESSAGES:,} messages")
    assert elapsed < 2, f"refusing took {elapsed:.1f} s"
    assert_no_traceback_logged(caplog)


def test_an_empty_message_of_the_user_is_refused(client, importer):
    """The app never stores an empty message of a user (sending one is refused): a file full
    of them is rows to store and nothing to read."""
    conversation = a_conversation(messages=[user_message(" \n "), reply()])
    response = post(client, as_bytes(export_file(conversation)))
    assert_refused(response, "conversations[0].messages[0].content", "must not be empty")


def test_more_empty_replies_than_the_cap_are_refused(client, importer):
    """A reply can be empty (it failed before its first word), but a file of thousands of
    them is the same cheap attack: past the cap the file is refused."""
    cap = exports.MAX_EMPTY_REPLIES
    messages = []
    for _ in range(cap + 1):
        messages += [user_message(), reply("", status="error", error="The server was down.")]
    response = post(client, as_bytes(export_file(a_conversation(messages=messages))))
    assert_refused(response, f"more than {cap} empty replies")


def test_empty_replies_up_to_the_cap_are_imported(client, importer):
    """The control: real failed replies, as many as the cap allows, import."""
    messages = []
    for _ in range(exports.MAX_EMPTY_REPLIES):
        messages += [user_message(), reply("", status="error", error="The server was down.")]
    response = post(client, as_bytes(export_file(a_conversation(messages=messages))))
    assert response.status_code == 302
    assert Message.objects.count() == len(messages)


# An import stored in pieces is seen whole or not at all.


def many_messages(count: int) -> list[dict[str, Any]]:
    return [user_message(f"Question {i}") if i % 2 == 0 else reply() for i in range(count)]


def test_an_import_is_not_shown_while_its_messages_are_being_stored(
    importer, personas, monkeypatch
):
    """The messages are stored in short transactions, so the conversation exists before its
    last message does. Without hiding it the user's sidebar (and page, and socket) would
    show a conversation with half its messages; it appears only when all are stored."""
    checked = exports.parse_import(
        as_bytes(export_file(a_conversation(messages=many_messages(3 * imports.CHUNK_ROWS))))
    )
    seen_while_storing = []
    store = imports._store_messages

    def store_and_look(*args: Any) -> None:
        seen_while_storing.append(Conversation.objects.owned_by(importer).count())
        store(*args)

    monkeypatch.setattr(imports, "_store_messages", store_and_look)
    [conversation] = imports.import_conversations(user=importer, conversations=checked)

    assert seen_while_storing == [0, 0, 0]
    assert list(Conversation.objects.owned_by(importer)) == [conversation]
    assert conversation.messages.count() == 3 * imports.CHUNK_ROWS


def test_an_import_that_fails_half_way_leaves_nothing_behind(importer, personas, monkeypatch):
    """A failure after some pieces were stored (the database gone, the disk full): without
    the fix's clean-up the user would find half a conversation, or hidden rows would pile up.
    What was stored is deleted, and the failure goes on to the caller."""
    checked = exports.parse_import(
        as_bytes(
            export_file(
                a_conversation(messages=many_messages(3 * imports.CHUNK_ROWS)),
                a_conversation(title="Second"),
            )
        )
    )
    calls = 0
    store = imports._store_messages

    def fail_the_second_time(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("disk full")
        store(*args)

    monkeypatch.setattr(imports, "_store_messages", fail_the_second_time)
    with pytest.raises(OSError):
        imports.import_conversations(user=importer, conversations=checked)

    assert not Conversation.objects.filter(user=importer).exists()
    assert not Message.objects.exists()


def test_long_messages_are_stored_in_smaller_pieces(importer, personas, monkeypatch):
    """Pieces are bounded by their size too: 4 MB of long replies in one piece of 250 rows
    would again be one long transaction that everyone else's writes wait behind."""
    long_reply = reply("word " * 20_000)
    checked = exports.parse_import(
        as_bytes(export_file(a_conversation(messages=[user_message(), long_reply] * 20)))
    )
    pieces = []
    store = imports._store_messages

    def measure(conversation: Conversation, messages: list[dict[str, Any]], *ids: Any) -> None:
        pieces.append(sum(len(m["content"]) for m in messages))
        store(conversation, messages, *ids)

    monkeypatch.setattr(imports, "_store_messages", measure)
    imports.import_conversations(user=importer, conversations=checked)

    assert len(pieces) > 1
    assert max(pieces) <= imports.CHUNK_CHARS
    assert Message.objects.count() == 40


def test_what_a_dead_import_left_hidden_is_deleted_by_the_next_one(client, importer):
    """A process that died while storing an import leaves its conversation hidden for good;
    the user's next import deletes it (one still being stored, from another tab, is kept)."""
    abandoned = Conversation.objects.create(
        user=importer, importing=True, updated_at=timezone.now() - timedelta(hours=2)
    )
    Message.objects.create(conversation=abandoned, role=Role.USER, content="half", imported=True)
    in_progress = Conversation.objects.create(user=importer, importing=True)

    assert post(client, as_bytes(export_file())).status_code == 302

    assert not Conversation.objects.filter(pk=abandoned.pk).exists()
    assert Conversation.objects.filter(pk=in_progress.pk).exists()
    assert Conversation.objects.owned_by(importer).count() == 1


def test_an_export_made_before_these_limits_still_imports(client, importer, chef):
    """Files written by the app before the import stopped taking the model and usage: they
    still import (their model and limit are simply not taken)."""
    old = export_file(
        a_conversation(
            settings={
                "system_prompt": "You are a chef.",
                "model": "gpt-4o-mini",
                "temperature": 0.4,
                "max_completion_tokens": None,
                "response_format": "text",
                "logprobs": False,
                "top_logprobs": 0,
            },
            messages=[
                user_message(created_at="2025-03-01T10:00:00Z"),
                reply(
                    finish_reason="stop",
                    model="gpt-4o-mini",
                    error="",
                    created_at="2025-03-01T10:00:01Z",
                    completed_at="2025-03-01T10:00:03Z",
                    logprobs=None,
                ),
            ],
        )
    )
    old["exported_at"] = "2025-03-02T09:00:00Z"
    response = post(client, as_bytes(old))
    assert response.status_code == 302
    imported = Conversation.objects.get(user=importer)
    assert imported.system_prompt == "You are a chef."
    assert [m.content for m in imported.messages.order_by("id")] == [
        "How long do I boil an egg?",
        "Nine minutes for a hard one.",
    ]
