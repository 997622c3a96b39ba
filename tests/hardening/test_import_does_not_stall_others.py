"""A large import while another user chats: the other user's replies stay about as quick as
when nothing else happens. Timed through the real front door (`chatsite.asgi.application`),
where a page's request runs in a thread of its own beside the sockets' database work."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from chatsite.asgi import application
from conversations import exports
from conversations.models import Conversation, Message
from tests.servers import session_cookie

from .victim import Victim

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer", "server_collector"),
]

CSRF_SECRET = "importimportimportimportimport12"


def file_at_the_caps() -> bytes:
    """As many messages as one file may hold, with as many empty replies as it may hold,
    in conversations as long as they may be: the most rows an import can ask for."""
    per_conversation = exports.MAX_MESSAGES
    conversations = []
    empty_left = exports.MAX_EMPTY_REPLIES
    for start in range(0, exports.MAX_IMPORT_MESSAGES, per_conversation):
        messages: list[dict[str, Any]] = []
        for i in range(start, min(start + per_conversation, exports.MAX_IMPORT_MESSAGES)):
            if i % 2 == 0:
                messages.append({"role": "user", "content": f"Question number {i}?"})
            elif empty_left:
                empty_left -= 1
                messages.append({"role": "assistant", "content": "", "status": "error"})
            else:
                messages.append(
                    {
                        "role": "assistant",
                        "content": "An answer of a few words, as most are. " * 4,
                        "usage": {"prompt_tokens": 40, "completion_tokens": 30},
                    }
                )
        conversations.append({"title": f"Part {start}", "messages": messages})
    data = json.dumps(
        {"format": exports.FORMAT, "version": exports.VERSION, "conversations": conversations}
    ).encode()
    assert len(data) <= exports.MAX_IMPORT_BYTES
    return data


async def post_import(user: Any, data: bytes) -> dict[str, Any]:
    """POST the import form as a logged-in browser does: session cookie, CSRF token, origin."""
    cookie = await database_sync_to_async(session_cookie)(user)
    upload = SimpleUploadedFile("export.json", data, content_type="application/json")
    body = encode_multipart(BOUNDARY, {"file": upload, "csrfmiddlewaretoken": CSRF_SECRET})
    headers = [
        (b"host", b"127.0.0.1"),
        (b"origin", b"http://127.0.0.1"),
        (b"cookie", f"{cookie}; csrftoken={CSRF_SECRET}".encode()),
        (b"content-type", MULTIPART_CONTENT.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    communicator = HttpCommunicator(application, "POST", "/c/import/", body=body, headers=headers)
    return await communicator.get_response(timeout=120)


async def import_timing_the_victim(
    user: Any, data: bytes, victim: Victim, attack: str, status: int = 302
) -> None:
    """Import `data` as `user`, timing the victim's replies for as long as it lasts."""
    importing = asyncio.create_task(post_import(user, data))
    timed = 0
    while not importing.done():
        await victim.still_served(attack)
        timed += 1
    response = await importing
    assert response["status"] == status, response["body"][:500]
    assert timed >= 2, "the import ended before the victim was timed twice during it"


async def test_a_large_import_does_not_hold_up_another_users_replies(
    owner, outsider, conversation, settings
):
    """The issue's measure: an import of 170,000 empty messages held SQLite's write lock for
    9 s, and every other user's reply waited behind it (6 to 8 s instead of 0.1 s). Now an
    import is capped, and stored in short transactions taking their turn with everyone
    else's writes: the victim's replies during an import at the caps stay within a few times
    their idle time."""
    # The victim is timed for as long as the import lasts: it is no attacker of its own.
    settings.CHAT_MESSAGES_PER_MINUTE = 1000
    data = file_at_the_caps()
    victim = await Victim.ready(owner, conversation)

    await import_timing_the_victim(outsider, data, victim, "a large import")
    stored = await database_sync_to_async(
        lambda: Message.objects.filter(conversation__user=outsider).count()
    )()
    assert stored == exports.MAX_IMPORT_MESSAGES
    shown = await database_sync_to_async(lambda: Conversation.objects.owned_by(outsider).count())()
    assert shown == exports.MAX_IMPORT_MESSAGES // exports.MAX_MESSAGES


def chatgpt_export_at_the_limit() -> bytes:
    """ChatGPT's conversations.json as large as an upload may be: thousands of conversations
    of small objects, the slowest kind of JSON to read."""
    conversations = []
    size = 0
    while size < exports.import_limit() * 0.9:
        mapping = {"root": {"id": "root", "message": None, "parent": None, "children": ["q"]}}
        parent = "root"
        for turn in range(6):
            key = f"m{turn}"
            role = "user" if turn % 2 == 0 else "assistant"
            mapping[parent]["children"] = [key]
            mapping[key] = {
                "id": key,
                "parent": parent,
                "children": [],
                "message": {
                    "author": {"role": role},
                    "create_time": 1_767_000_000 + len(conversations),
                    "content": {"content_type": "text", "parts": ["A short line of text."]},
                    "recipient": "all",
                    "metadata": {"model_slug": "gpt-4o", "citations": [], "request_id": "r"},
                },
            }
            parent = key
        item = {"title": f"Chat {len(conversations)}", "mapping": mapping, "current_node": parent}
        conversations.append(item)
        size += len(json.dumps(item)) + 2
    data = json.dumps(conversations).encode()
    assert len(data) <= exports.import_limit()
    return data


async def test_a_large_chatgpt_export_is_read_without_holding_up_another_users_replies(
    owner, outsider, conversation, settings
):
    """Read in the server's process, 30 MB of ChatGPT's small objects held Python's lock for
    seconds (2.3 s to parse, 1.8 s to translate): every other user's reply waited. Read in a
    process of its own, the victim's replies stay within a few times their idle time."""
    settings.CHAT_MESSAGES_PER_MINUTE = 1000
    data = chatgpt_export_at_the_limit()
    victim = await Victim.ready(owner, conversation)

    await import_timing_the_victim(outsider, data, victim, "a large ChatGPT export")
    shown = await database_sync_to_async(lambda: Conversation.objects.owned_by(outsider).count())()
    assert shown == exports.MAX_CONVERSATIONS


def small_objects_at_the_limit(document: Any) -> bytes:
    """`document` with as many empty objects beside it as an upload may hold: the slowest
    JSON to read, 7 million of them."""
    padding = b", " + b"{}, " * int(exports.import_limit() * 0.9 / 4) + b"{}]"
    head = json.dumps(document).encode()
    data = (
        head[:-1] + padding
        if head.endswith(b"]")
        else head[:-1] + b', "padding": [' + padding[2:] + b"}"
    )
    assert len(data) <= exports.import_limit()
    return data


@pytest.mark.parametrize(
    "document",
    [
        {
            "format": exports.FORMAT,
            "version": exports.VERSION,
            "conversations": [{"title": "One", "messages": [{"role": "user", "content": "Hi"}]}],
        },
        [{"not": "an export of anyone's"}],
    ],
    ids=["this app's format", "no format at all"],
)
async def test_a_file_of_small_objects_is_refused_without_holding_up_another_users_replies(
    owner, outsider, conversation, settings, document
):
    """Read in the server's process, this app's own export format (or JSON of no format, read
    there a second time to say so) let a file of 30 MB of empty objects hold Python's lock for
    a second and more. Every file is read in the child, whose answer the server takes a piece
    at a time: the victim's replies stay within a few times their idle time, and the file is
    refused with a sentence."""
    settings.CHAT_MESSAGES_PER_MINUTE = 1000
    data = small_objects_at_the_limit(document)
    victim = await Victim.ready(owner, conversation)

    await import_timing_the_victim(outsider, data, victim, "a file of small objects", status=400)
    stored = await database_sync_to_async(
        lambda: Message.objects.filter(conversation__user=outsider).count()
    )()
    assert stored == 0
