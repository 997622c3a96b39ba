"""Attached files travel with their message to the model: images as image parts (to a model
that reads images), text files and PDFs as delimited text; the simulator's answer proves the
bytes arrived. Refusals store nothing."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from conversations.models import Attachment, ChatModel, Message
from tests.attachments.conftest import uploaded
from tests.conversations.chat_client import ChatSocket
from tests.files import image_bytes, pdf_bytes

pytestmark = [pytest.mark.django_db(transaction=True)]


@database_sync_to_async
def reads_images(conversation, accepts: bool = True) -> None:
    ChatModel.objects.update_or_create(
        name=conversation.effective_model, defaults={"accepts_images": accepts}
    )


async def send(socket: ChatSocket, content: str, attachments: list[int], client_id: str = "m1"):
    await socket.send(
        {
            "type": "message.send",
            "client_id": client_id,
            "content": content,
            "attachments": attachments,
        }
    )


def last_user_content(model_server) -> list[dict]:
    messages = model_server.config.requests[-1]["messages"]
    return [m for m in messages if m["role"] == "user"][-1]["content"]


async def test_an_image_reaches_the_model_and_the_simulator_describes_it(
    owner, conversation, model_server
):
    await reads_images(conversation)
    first = await uploaded(owner, conversation, "a.png", image_bytes(64, 48))
    second = await uploaded(owner, conversation, "b.jpg", image_bytes(300, 200, fmt="JPEG"))
    async with ChatSocket(owner, conversation.pk) as socket:
        await send(socket, "What is in these?", [first, second])
        question = (await socket.until("message.created"))["message"]
        answer = (await socket.until("reply.ended"))["message"]
    assert [a["name"] for a in question["attachments"]] == ["a.png", "b.jpg"]
    assert question["attachments"][0]["url"].endswith(f"/attachments/{first}/")
    assert "Images: 2 (64×48, 300×200)" in answer["content"]
    assert "You asked: «What is in these?»" in answer["content"]
    parts = last_user_content(model_server)
    assert parts[0] == {"type": "text", "text": "What is in these?"}
    assert parts[1]["type"] == "image_url"
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[2]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    linked = await database_sync_to_async(list)(
        Attachment.objects.values_list("message_id", flat=True)
    )
    assert linked == [question["id"], question["id"]]


async def test_the_images_of_earlier_messages_go_with_the_history(
    owner, conversation, model_server
):
    await reads_images(conversation)
    image = await uploaded(owner, conversation, "a.png", image_bytes(64, 48))
    async with ChatSocket(owner, conversation.pk) as socket:
        await send(socket, "Look", [image])
        await socket.until("reply.ended")
        await socket.say("And now?")
        answer = (await socket.until("reply.ended"))["message"]
    assert "Images:" not in answer["content"]
    first_question = next(
        m for m in model_server.config.requests[-1]["messages"] if m["role"] == "user"
    )
    assert first_question["content"][1]["type"] == "image_url"


async def test_an_image_alone_is_a_message(owner, conversation, model_server):
    await reads_images(conversation)
    image = await uploaded(owner, conversation, "chart.png", image_bytes(10, 20))
    async with ChatSocket(owner, conversation.pk) as socket:
        await send(socket, "", [image])
        question = (await socket.until("message.created"))["message"]
        answer = (await socket.until("reply.ended"))["message"]
    assert question["content"] == "" and "Images: 1 (10×20)" in answer["content"]
    title = await database_sync_to_async(
        lambda: type(conversation).objects.get(pk=conversation.pk).title
    )()
    assert title == "chart.png"


async def test_a_model_that_does_not_read_images_is_refused_with_a_sentence(
    owner, conversation, model_server
):
    await reads_images(conversation, accepts=False)
    image = await uploaded(owner, conversation, "a.png", image_bytes())
    async with ChatSocket(owner, conversation.pk) as socket:
        await send(socket, "Look", [image])
        error = await socket.until("error")
    assert error["code"] == "images_not_accepted"
    assert error["message"].startswith("This model does not read images.")
    assert not await database_sync_to_async(Message.objects.exists)()
    assert await database_sync_to_async(Attachment.objects.filter(message=None).count)() == 1
    assert not model_server.config.requests


async def test_a_text_file_and_a_pdf_are_quoted(owner, conversation, model_server):
    notes = await uploaded(owner, conversation, "notes.md", b"# Launch plan\n\nShip on Friday.")
    paper = await uploaded(owner, conversation, "paper.pdf", pdf_bytes("Findings of the study"))
    async with ChatSocket(owner, conversation.pk) as socket:
        await send(socket, "Summarise", [notes, paper])
        answer = (await socket.until("reply.ended"))["message"]
    assert "From «notes.md»: «# Launch plan»" in answer["content"]
    assert "From «paper.pdf»: «Findings of the study»" in answer["content"]
    parts = last_user_content(model_server)
    assert parts[1] == {
        "type": "text",
        "text": '<file name="notes.md">\n# Launch plan\n\nShip on Friday.\n</file>',
    }
    assert parts[2]["text"].startswith('<file name="paper.pdf">\nFindings of the study')


async def test_a_files_text_counts_against_the_context_window(
    owner, conversation, model_server, settings
):
    """An earlier message whose file fills most of the window is left out of the next call."""
    settings.CHAT_CONTEXT_TOKENS = 600
    big = await uploaded(owner, conversation, "long.txt", b"word " * 400)
    async with ChatSocket(owner, conversation.pk) as socket:
        await send(socket, "Read this", [big])
        await socket.until("reply.ended")
        await socket.say("Next")
        await socket.until("reply.ended")
    users = [m for m in model_server.config.requests[-1]["messages"] if m["role"] == "user"]
    assert [m["content"] for m in users] == ["Next"]


async def test_another_users_or_a_used_upload_is_refused(
    owner, outsider, conversation, model_server
):
    from conversations import services

    elsewhere = await database_sync_to_async(services.start_conversation)(user=outsider)
    theirs = await uploaded(outsider, elsewhere, "theirs.txt", b"secret")
    mine_elsewhere = await database_sync_to_async(services.start_conversation)(user=owner)
    other_chat = await uploaded(owner, mine_elsewhere, "other.txt", b"other")
    mine = await uploaded(owner, conversation, "mine.txt", b"mine")
    async with ChatSocket(owner, conversation.pk) as socket:
        for client_id, ids in (("a", [theirs]), ("b", [other_chat]), ("c", [987654])):
            await send(socket, "Use it", ids, client_id)
            error = await socket.until("error")
            assert error["code"] == "attachment_not_found" and error["client_id"] == client_id
        await send(socket, "Mine", [mine], "d")
        await socket.until("reply.ended")
        await send(socket, "Again", [mine], "e")
        error = await socket.until("error")
    assert error["code"] == "attachment_not_found"
    assert error["message"] == "An attached file is no longer available. Attach it again."
    contents = await database_sync_to_async(
        lambda: list(Message.objects.filter(role="user").values_list("content", flat=True))
    )()
    assert contents == ["Mine"]


async def test_too_many_files_in_a_frame_are_refused(owner, conversation, model_server, settings):
    settings.CHAT_ATTACHMENTS_PER_MESSAGE = 1
    async with ChatSocket(owner, conversation.pk) as socket:
        await send(socket, "Two", [1, 2])
        error = await socket.until("error")
        assert error["code"] == "too_many_attachments"
        await socket.send(
            {"type": "message.send", "client_id": "x", "content": "Hi", "attachments": "1"}
        )
        error = await socket.until("error")
    assert error["code"] == "invalid"
    assert not await database_sync_to_async(Message.objects.exists)()
