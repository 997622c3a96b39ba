"""Export a conversation as Markdown and JSON; import a JSON export, checked whole, always into
the importing user's account, refused with a clear message (and nothing stored) when wrong."""

from __future__ import annotations

import io
import json
import math
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from conversations import exports, services
from conversations.models import Conversation, Message, Persona, Role, Status
from tests.features.ledger import record_in_ledger

pytestmark = pytest.mark.django_db

FIELDS = [
    "role",
    "content",
    "status",
    "finish_reason",
    "model",
    "error",
    "rating",
    "prompt_tokens",
    "completion_tokens",
    "parameters",
    "logprobs",
    "created_at",
]


@pytest.fixture
def chat(owner, personas):
    """A conversation with a bit of everything: a stopped reply, a JSON one, logprobs."""
    chef = Persona.objects.get(name_en="Chef")
    conversation = services.start_conversation(
        user=owner, persona=chef, overrides={"temperature": 0.4, "logprobs": True}
    )
    services.rename_conversation(user=owner, conversation_id=conversation.pk, title="Pasta night")

    def add(**kw):
        message = Message.objects.create(conversation=conversation, **kw)
        return record_in_ledger(message) if message.role == Role.ASSISTANT else message

    add(role=Role.USER, content="Carbonara for two?")
    add(
        role=Role.ASSISTANT,
        content="Eggs, **pecorino**, guanciale.\n\n```python\nprint('```')\n```",
        status=Status.COMPLETE,
        finish_reason="stop",
        model="gpt-4o-mini",
        rating="good",
        prompt_tokens=120,
        completion_tokens=80,
        parameters={"model": "gpt-4o-mini", "temperature": 0.4, "logprobs": True},
        logprobs=[
            {"token": "Eggs", "logprob": math.log(0.9), "top_logprobs": []},
            {
                "token": ",",
                "logprob": math.log(0.4),
                "top_logprobs": [{"token": ";", "logprob": -2.0}],
            },
        ],
    )
    add(role=Role.USER, content="As JSON please")
    add(
        role=Role.ASSISTANT,
        content='{"dish": "```carbonara"',
        status=Status.STOPPED,
        model="gpt-4o-mini",
        prompt_tokens=210,
        completion_tokens=7,
        parameters={"model": "gpt-4o-mini", "temperature": 0.4, "response_format": "json_object"},
    )
    return conversation


def rows(conversation) -> list[tuple]:
    return [
        tuple(getattr(m, name) for name in FIELDS)
        for m in Message.objects.filter(conversation=conversation).order_by("id")
    ]


def upload(data: bytes, name: str = "export.json") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/json")


def test_export_then_import_gives_back_the_same_messages(client, owner, chat):
    client.force_login(owner)
    response = client.get(reverse("export_conversation", args=[chat.pk, "json"]))
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="pasta-night-')

    imported = client.post(reverse("import_conversations"), {"file": upload(response.content)})

    copy = Conversation.objects.exclude(pk=chat.pk).get()
    assert imported.status_code == 302 and imported["Location"] == f"/c/{copy.pk}/"
    assert rows(copy) == rows(chat)
    assert copy.user == owner and copy.title == "Pasta night" and copy.persona == chat.persona
    assert copy.settings_dict() == chat.settings_dict()
    # A backup brought back sorts where it was: its last activity is the file's.
    assert copy.updated_at == chat.updated_at


def test_the_markdown_export_reads_as_the_conversation(client, owner, chat):
    client.force_login(owner)
    response = client.get(reverse("export_conversation", args=[chat.pk, "md"]))
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    text = response.content.decode()
    assert text.startswith("# Pasta night\n")
    assert "- Persona: 🍳 Chef" in text
    assert "temperature 0.4" in text and "token confidence" in text
    assert "- Tokens: 417 (330 in · 87 out)" in text
    assert "Carbonara for two?" in text and "Eggs, **pecorino**, guanciale." in text
    # A fence that the reply's own backticks cannot close, and the JSON reply marked.
    assert '````json\n{"dish": "```carbonara"\n````' in text
    assert "· Stopped" in text and "*Not valid JSON: shown as the model wrote it.*" in text
    assert "confidence: mean 65%, lowest 40%" in text


def test_an_import_lands_in_the_importing_users_account_whoever_exported_it(
    client, owner, outsider, chat
):
    document = json.loads(exports.export_json([chat]))
    client.force_login(outsider)
    client.post(reverse("import_conversations"), {"file": upload(json.dumps(document).encode())})
    copy = Conversation.objects.exclude(pk=chat.pk).get()
    assert copy.user == outsider
    assert Conversation.objects.filter(user=owner).count() == 1


def test_a_streaming_reply_in_a_file_is_imported_as_interrupted(client, owner, chat):
    document = json.loads(exports.export_json([chat]))
    document["conversations"][0]["messages"][-1]["status"] = "streaming"
    client.force_login(owner)
    client.post(reverse("import_conversations"), {"file": upload(json.dumps(document).encode())})
    copy = Conversation.objects.exclude(pk=chat.pk).get()
    assert copy.messages.last().status == Status.INTERRUPTED


def document_of(chat) -> dict:
    return json.loads(exports.export_json([chat]))


def broken(change):
    def make(chat) -> bytes:
        document = document_of(chat)
        change(document)
        return json.dumps(document).encode()

    return make


def conv(document) -> dict:
    return document["conversations"][0]


WRONG_SHAPES = {
    "not json": (lambda chat: b"\x89PNG not json", "it is not JSON"),
    "a list": (lambda chat: b"[1, 2]", "it is not a conversation export of this app"),
    "another app's export": (
        lambda chat: json.dumps({"title": "x", "entries": []}).encode(),
        "it is not a conversation export of this app",
    ),
    "a ChatGPT export with nothing in it": (
        lambda chat: json.dumps({"title": "x", "mapping": {}}).encode(),
        "it holds no conversation with a message",
    ),
    "a future version": (
        broken(lambda d: d.update(version=9)),
        "export version 9 is not supported",
    ),
    "no conversations": (
        broken(lambda d: d.update(conversations=[])),
        "“conversations” must be a list of at least one conversation.",
    ),
    "a role the app never makes": (
        broken(lambda d: conv(d)["messages"][0].update(role="system")),
        "conversations[0].messages[0].role must be “user” or “assistant”.",
    ),
    "an unknown status": (
        broken(lambda d: conv(d)["messages"][1].update(status="finished")),
        "conversations[0].messages[1].status must be one of:",
    ),
    "text that is a number": (
        broken(lambda d: conv(d)["messages"][2].update(content=42)),
        "conversations[0].messages[2].content must be text.",
    ),
    "an unknown field": (
        broken(lambda d: conv(d).update(owner="someone-else")),
        "conversations[0] has an unknown field “owner”.",
    ),
    "a temperature out of range": (
        broken(lambda d: conv(d)["settings"].update(temperature=7)),
        "conversations[0].settings.temperature",
    ),
    "negative tokens": (
        broken(lambda d: conv(d)["messages"][1]["usage"].update(prompt_tokens=-5)),
        "conversations[0].messages[1].usage.prompt_tokens must be a whole number",
    ),
    "a broken logprob": (
        broken(lambda d: conv(d)["messages"][1]["logprobs"][0].update(logprob="high")),
        "conversations[0].messages[1].logprobs[0].logprob must be a number.",
    ),
    "a rating of a question": (
        broken(lambda d: conv(d)["messages"][0].update(rating="good")),
        "conversations[0].messages[0].rating must be “good”, “bad” or empty",
    ),
    "a bad date": (
        broken(lambda d: conv(d)["messages"][0].update(created_at="yesterday")),
        "conversations[0].messages[0].created_at must be a date and time",
    ),
    "NaN": (
        lambda chat: exports.export_json([chat]).replace(
            b'"temperature": 0.4', b'"temperature": NaN'
        ),
        "it is not JSON",
    ),
}


@pytest.mark.parametrize("name", list(WRONG_SHAPES))
def test_an_import_of_another_shape_is_refused_with_a_clear_message_and_stores_nothing(
    client, owner, chat, name
):
    make, reason = WRONG_SHAPES[name]
    before = (Conversation.objects.count(), Message.objects.count())
    client.force_login(owner)

    response = client.post(reverse("import_conversations"), {"file": upload(make(chat))})

    assert response.status_code == 400
    html = response.content.decode()
    assert "This file cannot be imported:" in html
    assert reason.replace("“", "&ldquo;").replace("”", "&rdquo;") in html or reason in html
    assert "Nothing was imported." in html
    assert (Conversation.objects.count(), Message.objects.count()) == before


def test_a_file_whose_second_conversation_is_wrong_stores_not_even_the_first(client, owner, chat):
    document = document_of(chat)
    second = json.loads(json.dumps(conv(document)))
    second["messages"][0]["role"] = "robot"
    document["conversations"].append(second)
    client.force_login(owner)
    response = client.post(
        reverse("import_conversations"), {"file": upload(json.dumps(document).encode())}
    )
    assert response.status_code == 400
    assert Conversation.objects.count() == 1


def test_an_import_over_the_size_limit_is_refused_and_stores_nothing(
    client, owner, chat, monkeypatch, settings
):
    monkeypatch.setattr(exports, "MAX_IMPORT_BYTES", 1000)
    # The limit grows by what attachments may add (`exports.import_limit`): none here.
    settings.CHAT_EXPORT_ATTACHMENT_BYTES = 0
    before = Message.objects.count()
    client.force_login(owner)
    data = exports.export_json([chat])
    assert len(data) > 1000
    response = client.post(reverse("import_conversations"), {"file": upload(data)})
    assert response.status_code == 400
    assert "This file cannot be imported: it is 0.0 MB, the limit is 0.0 MB." in (
        response.content.decode()
    )
    assert Conversation.objects.count() == 1 and Message.objects.count() == before


def test_the_size_limit_is_five_megabytes_and_is_checked_before_parsing(settings):
    # Five megabytes of conversations, and what the attachments budget adds (none here).
    settings.CHAT_EXPORT_ATTACHMENT_BYTES = 0
    with pytest.raises(exports.ImportRefused) as refused:
        exports.parse_import(b" " * (5 * 1024 * 1024 + 1))
    assert refused.value.message == (
        "This file cannot be imported: it is 5.0 MB, the limit is 5.0 MB."
    )


@pytest.mark.parametrize("fmt", ["md", "json"])
def test_another_users_conversation_cannot_be_exported(client, outsider, chat, fmt):
    client.force_login(outsider)
    assert client.get(reverse("export_conversation", args=[chat.pk, fmt])).status_code == 404


def test_exports_need_a_login(client, chat):
    response = client.get(reverse("export_conversation", args=[chat.pk, "json"]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_unknown_export_format_is_404(client, owner, chat):
    client.force_login(owner)
    assert client.get(reverse("export_conversation", args=[chat.pk, "pdf"])).status_code == 404


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(admin)
    return client


def test_the_admin_exports_several_conversations_at_once_as_one_importable_file(
    admin_client, owner, chat
):
    other = services.start_conversation(user=owner)
    Message.objects.create(conversation=other, role=Role.USER, content="Second one")
    response = admin_client.post(
        reverse("admin:conversations_conversation_changelist"),
        {"action": "export_json", "_selected_action": [str(chat.pk), str(other.pk)]},
    )
    assert response["Content-Disposition"].startswith('attachment; filename="conversations-')
    checked = exports.parse_import(response.content)
    assert sorted(len(c.messages) for c in checked) == [1, 4]


def test_the_admin_exports_several_conversations_as_markdown_files(admin_client, owner, chat):
    other = services.start_conversation(user=owner)
    response = admin_client.post(
        reverse("admin:conversations_conversation_changelist"),
        {"action": "export_markdown", "_selected_action": [str(chat.pk), str(other.pk)]},
    )
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    assert len(names) == 2 and all(name.startswith("owner/") for name in names)
    pasta = next(name for name in names if "pasta-night" in name)
    assert archive.read(pasta).decode().startswith("# Pasta night")
