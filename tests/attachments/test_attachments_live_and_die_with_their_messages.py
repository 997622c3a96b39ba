"""Attachments follow their message: an edit keeps them, a branch copies them, a deleted
conversation takes them and their files along."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from conversations import services
from conversations.models import Attachment, ChatModel, Role
from tests.attachments.conftest import uploaded
from tests.conversations.chat_client import ChatSocket
from tests.files import image_bytes

pytestmark = [pytest.mark.django_db(transaction=True)]


async def ask_with_files(owner, conversation, *files: tuple[str, bytes]) -> dict:
    ids = [await uploaded(owner, conversation, name, data) for name, data in files]
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.send(
            {"type": "message.send", "client_id": "q", "content": "Look", "attachments": ids}
        )
        question = (await socket.until("message.created"))["message"]
        await socket.until("reply.ended")
    return question


@database_sync_to_async
def stored_files(conversation=None) -> list[tuple[str, str]]:
    rows = Attachment.objects.all()
    if conversation is not None:
        rows = rows.filter(conversation=conversation)
    return [(a.name, a.file.name) for a in rows]


async def test_editing_a_message_keeps_its_files(owner, conversation, model_server):
    await database_sync_to_async(ChatModel.objects.create)(
        name=conversation.effective_model, accepts_images=True
    )
    question = await ask_with_files(
        owner, conversation, ("a.png", image_bytes(30, 20)), ("n.txt", b"Note one")
    )
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.send(
            {
                "type": "message.edit",
                "client_id": "e",
                "message_id": question["id"],
                "content": "Look again",
            }
        )
        edited = (await socket.until("message.created"))["message"]
        answer = (await socket.until("reply.ended"))["message"]
    assert [a["name"] for a in edited["attachments"]] == ["a.png", "n.txt"]
    assert {a["id"] for a in edited["attachments"]}.isdisjoint(
        a["id"] for a in question["attachments"]
    )
    assert "Images: 1 (30×20)" in answer["content"]
    assert "From «n.txt»: «Note one»" in answer["content"]
    files = await stored_files()
    assert len(files) == 4 and len({name for _, name in files}) == 4


async def test_a_branch_copies_the_files(client, owner, conversation, model_server):
    question = await ask_with_files(owner, conversation, ("n.txt", b"Note"))

    @database_sync_to_async
    def branch():
        return services.branch_conversation(
            user=owner, conversation_id=conversation.pk, message_id=question["id"]
        )

    new = await branch()
    copies = await stored_files(new)
    assert [name for name, _ in copies] == ["n.txt"]
    assert copies[0][1] not in [name for _, name in await stored_files(conversation)]

    @database_sync_to_async
    def copied_to():
        return Attachment.objects.get(conversation=new).message.role

    assert await copied_to() == Role.USER


async def test_deleting_a_conversation_deletes_its_files(owner, conversation, model_server):
    await ask_with_files(owner, conversation, ("n.txt", b"Note"), ("m.txt", b"More"))
    await uploaded(owner, conversation, "unsent.txt", b"never sent")

    @database_sync_to_async
    def delete_and_check():
        from django.core.files.storage import default_storage

        names = [a.file.name for a in Attachment.objects.all()]
        assert len(names) == 3 and all(default_storage.exists(name) for name in names)
        services.delete_conversation(user=owner, conversation_id=conversation.pk)
        return names, default_storage

    names, storage = await delete_and_check()
    assert not await database_sync_to_async(Attachment.objects.exists)()
    assert not any(storage.exists(name) for name in names)
