"""History brought from ChatGPT (its data export: the zip, or the conversations.json in it) and
from Open WebUI ("Export chats"): each conversation's tree kept, regenerated answers and edited
questions as versions, the branch shown there shown here, what has no place here left out."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from conversations import exports
from conversations.models import Conversation
from conversations.tree import Tree

pytestmark = pytest.mark.django_db

T0 = 1_767_000_000  # 2025-12-29, seconds


def node(key, parent, children, role=None, text=None, *, at=0, **message):
    """A node of ChatGPT's `mapping`."""
    if role is None:
        body = None
    else:
        content = message.pop("content", {"content_type": "text", "parts": [text]})
        body = {
            "id": key,
            "author": {"role": role},
            "create_time": T0 + at,
            "content": content,
            "status": "finished_successfully",
            "recipient": message.pop("recipient", "all"),
            "metadata": message.pop("metadata", {}),
        }
    return key, {"id": key, "message": body, "parent": parent, "children": children}


def chatgpt_conversation(title="Soup", current="a2", at=0):
    mapping = dict(
        [
            node("root", None, ["sys"]),
            node(
                "sys",
                "root",
                ["ctx"],
                "system",
                "",
                metadata={"is_visually_hidden_from_conversation": True},
            ),
            node(
                "ctx",
                "sys",
                ["q"],
                "user",
                content={"content_type": "user_editable_context", "user_profile": "I cook."},
                metadata={"is_visually_hidden_from_conversation": True},
            ),
            node(
                "q",
                "ctx",
                ["a1", "a2"],
                "user",
                content={
                    "content_type": "multimodal_text",
                    "parts": [{"content_type": "image_asset_pointer"}, "What soup is this?"],
                },
                at=1,
            ),
            node("a1", "q", [], "assistant", "Tomato.", at=2, metadata={"model_slug": "gpt-4o"}),
            # The regenerated answer, written around a tool's call: one message here.
            node(
                "a2",
                "q",
                ["call"],
                "assistant",
                "Let me look.",
                at=3,
                metadata={"model_slug": "gpt-4o"},
            ),
            node(
                "call",
                "a2",
                ["out"],
                "assistant",
                content={"content_type": "code", "text": "search('soup')"},
                recipient="browser",
                at=4,
            ),
            node("out", "call", ["a2b"], "tool", "results…", at=5),
            node("a2b", "out", [], "assistant", "Gazpacho.", at=6),
        ]
    )
    return {
        "title": title,
        "create_time": T0 + at,
        "update_time": T0 + at + 10,
        "mapping": mapping,
        "current_node": current,
        "conversation_id": "c-1",
    }


def open_webui_chat(title="Trip", *, current="u2", pinned=True, at=0):
    def message(key, parent, children, role, content, when):
        return {
            "id": key,
            "parentId": parent,
            "childrenIds": children,
            "role": role,
            "content": content,
            "timestamp": T0 + at + when,
            **(
                {"model": "llama3.2:latest", "usage": {"prompt_tokens": 12, "completion_tokens": 7}}
                if role == "assistant"
                else {}
            ),
        }

    history = {
        "u1": message("u1", None, ["r1"], "user", "Plan a day in Seoul", 1),
        "r1": message("r1", "u1", [], "assistant", "Start at Gyeongbokgung.", 2),
        # The question edited: a second version, with its own answer.
        "u2": message("u2", None, ["r2"], "user", "서울에서 하루 일정을 짜 줘", 3),
        "r2": message("r2", "u2", [], "assistant", "경복궁에서 시작하세요.", 4),
    }
    return {
        "id": "chat-1",
        "title": title,
        "chat": {"title": title, "history": {"messages": history, "currentId": current}},
        "created_at": T0 + at,
        "updated_at": T0 + at + 10,
        "pinned": pinned,
    }


def import_file(client, owner, data: bytes, name: str):
    client.force_login(owner)
    upload = SimpleUploadedFile(name, data, content_type="application/octet-stream")
    return client.post(reverse("import_conversations"), {"file": upload})


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def shown(conversation: Conversation) -> list[tuple[str, str]]:
    """The active path: (role, text) of each message the page shows."""
    messages = {m.pk: m for m in conversation.messages.all()}
    return [(messages[i].role, messages[i].content) for i in Tree.of(messages.values()).path()]


def versions(conversation: Conversation, text: str) -> tuple[int, int]:
    messages = list(conversation.messages.all())
    found = next(m for m in messages if m.content == text)
    return Tree.of(messages).version(found.pk)


def test_chatgpts_export_comes_with_its_versions_and_the_branch_it_showed(client, owner, personas):
    data = json.dumps([chatgpt_conversation()]).encode()
    response = import_file(client, owner, data, "conversations.json")

    conversation = Conversation.objects.get(user=owner)
    assert response.status_code == 302 and response["Location"] == f"/c/{conversation.pk}/"
    assert conversation.title == "Soup"
    # Where it was in ChatGPT's list: its last activity, not the moment of the import.
    assert conversation.updated_at.timestamp() == T0 + 10
    assert shown(conversation) == [
        ("user", "[an image, not imported]\nWhat soup is this?"),
        ("assistant", "Let me look.\n\nGazpacho."),
    ]
    # The first answer is kept as the other version.
    assert versions(conversation, "Tomato.") == (1, 2)
    assert versions(conversation, "Let me look.\n\nGazpacho.") == (2, 2)
    assert set(conversation.messages.filter(role="assistant").values_list("model", flat=True)) == {
        "gpt-4o"
    }
    # The system prompt, the custom instructions, the tool's call and answer stay behind.
    assert conversation.messages.count() == 3


def test_the_branch_chatgpt_showed_is_the_one_shown_even_when_older(client, owner, personas):
    data = json.dumps([chatgpt_conversation(current="a1")]).encode()
    import_file(client, owner, data, "conversations.json")
    conversation = Conversation.objects.get(user=owner)
    assert shown(conversation)[-1] == ("assistant", "Tomato.")


def test_chatgpts_zip_is_read_as_it_comes(client, owner, personas):
    export = zipped(
        {
            "chat.html": b"<html></html>",
            "conversations.json": json.dumps([chatgpt_conversation()]).encode(),
            "user.json": b"{}",
        }
    )
    response = import_file(client, owner, export, "chatgpt-export.zip")
    assert response.status_code == 302
    assert Conversation.objects.get(user=owner).title == "Soup"


@pytest.mark.parametrize(
    ("files", "sentence"),
    [
        ({"notes.txt": b"hello"}, "This zip file holds no conversations.json"),
        ({"conversations.json": b" " * (exports.import_limit() + 1)}, "unpacked, the limit is"),
    ],
)
def test_a_zip_without_conversations_or_too_large_unpacked_is_refused(
    client, owner, personas, files, sentence
):
    response = import_file(client, owner, zipped(files), "export.zip")
    assert response.status_code == 400
    assert sentence in response.content.decode()
    assert not Conversation.objects.exists()


def test_open_webuis_export_comes_with_its_edits_and_pins(client, owner, personas):
    data = json.dumps([open_webui_chat()]).encode()
    response = import_file(client, owner, data, "chat-export.json")

    conversation = Conversation.objects.get(user=owner)
    assert response.status_code == 302
    assert conversation.title == "Trip" and conversation.pinned
    assert shown(conversation) == [
        ("user", "서울에서 하루 일정을 짜 줘"),
        ("assistant", "경복궁에서 시작하세요."),
    ]
    assert versions(conversation, "Plan a day in Seoul") == (1, 2)
    answer = conversation.messages.get(content="경복궁에서 시작하세요.")
    assert answer.model == "llama3.2:latest"
    assert (answer.prompt_tokens, answer.completion_tokens) == (12, 7)


def test_one_open_webui_chat_as_it_keeps_it_is_read_too(client, owner, personas):
    chat = open_webui_chat()["chat"] | {"timestamp": T0 * 1000}  # milliseconds, as it writes
    import_file(client, owner, json.dumps(chat).encode(), "chat.json")
    conversation = Conversation.objects.get(user=owner)
    assert conversation.title == "Trip"
    assert conversation.created_at.timestamp() == T0
    assert shown(conversation)[-1] == ("assistant", "경복궁에서 시작하세요.")


def test_an_older_open_webui_export_with_a_list_of_messages_is_one_path(client, owner, personas):
    chat = {
        "title": "Old",
        "chat": {
            "title": "Old",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
            ],
        },
        "created_at": T0,
        "updated_at": T0,
    }
    import_file(client, owner, json.dumps([chat]).encode(), "old.json")
    conversation = Conversation.objects.get(user=owner)
    assert shown(conversation) == [("user", "Hi"), ("assistant", "Hello!")]


def test_the_newest_conversations_that_one_import_holds_are_taken_and_the_rest_named(
    client, owner, personas
):
    many = [
        chatgpt_conversation(title=f"Chat {i}", at=i * 100)
        for i in range(exports.MAX_CONVERSATIONS + 2)
    ]
    response = import_file(client, owner, json.dumps(many).encode(), "conversations.json")

    titles = set(Conversation.objects.filter(user=owner).values_list("title", flat=True))
    assert len(titles) == exports.MAX_CONVERSATIONS
    assert "Chat 0" not in titles and "Chat 1" not in titles  # the two oldest
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"Imported {exports.MAX_CONVERSATIONS} conversations. 2 other conversations were left "
        f"out: an import takes at most {exports.MAX_CONVERSATIONS} conversations and 10,000 "
        "messages, the newest first."
    ]


def test_a_foreign_file_is_checked_as_any_import_is(client, owner, personas):
    broken = chatgpt_conversation()
    broken["mapping"]["q"]["message"]["content"]["parts"] = ["Tab\x00NUL"]
    response = import_file(client, owner, json.dumps([broken]).encode(), "conversations.json")
    assert response.status_code == 400
    assert "holds text that cannot be stored" in response.content.decode()
    assert not Conversation.objects.exists()


def test_a_message_longer_than_one_here_is_cut_and_says_so(client, owner, personas):
    pasted = chatgpt_conversation()
    pasted["mapping"]["q"]["message"]["content"]["parts"] = ["x" * (exports.MAX_CONTENT_CHARS + 5)]
    response = import_file(client, owner, json.dumps([pasted]).encode(), "conversations.json")
    assert response.status_code == 302
    question = Conversation.objects.get(user=owner).messages.get(role="user")
    assert len(question.content) == exports.MAX_CONTENT_CHARS
    assert question.content.endswith("[cut: the rest is longer than a message here can be]")


def test_a_list_of_something_else_is_refused_with_the_formats_named(client, owner, personas):
    response = import_file(client, owner, json.dumps([{"name": "x"}]).encode(), "x.json")
    page = response.content.decode()
    assert "not a conversation export of this app, of ChatGPT or of Open WebUI" in page
    assert not Conversation.objects.exists()


def test_a_foreign_export_of_an_unexpected_shape_is_refused_not_a_server_error(
    client, owner, personas
):
    odd = chatgpt_conversation()
    odd["mapping"]["q"]["message"]["author"] = "user"  # an object in every export seen
    response = import_file(client, owner, json.dumps([odd]).encode(), "conversations.json")
    assert response.status_code == 400
    assert "not shaped as ChatGPT&#x27;s or Open WebUI&#x27;s exports are" in (
        response.content.decode()
    )
    assert not Conversation.objects.exists()
