"""A message's files in the context: counted by the window like any text (an image as OpenAI
counts it), images as image parts only for a model that reads them, and an upload claimed once
even by two posts of one batch."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.base import ContentFile

from conversations import attachments, services
from conversations.context import AttachedFile, HistoryItem, image_tokens, select_context
from conversations.errors import ChatError
from conversations.llm import ModelError
from conversations.models import Attachment
from conversations.services import Post, post_messages


def image() -> AttachedFile:
    return AttachedFile(name="a.png", kind="image", width=1024, height=768, stored="x/a.png")


def test_an_image_costs_what_openai_counts():
    assert image_tokens(1024, 768) == 85 + 170 * 4
    assert image_tokens(4096, 1024) == image_tokens(2048, 512)
    assert image_tokens(100, 100) == 85 + 170


def test_images_are_image_parts_for_a_model_that_reads_them_and_a_line_for_another():
    item = HistoryItem(1, "user", "Look", (image(),))
    sees = select_context(system_prompt="", history=[item], model="m", accepts_images=True)
    assert sees.messages[0]["content"] == [
        {"type": "text", "text": "Look"},
        {"type": "image_url", "image_url": {"url": "stored-attachment:x/a.png"}},
    ]
    blind = select_context(system_prompt="", history=[item], model="m", accepts_images=False)
    assert blind.messages[0]["content"][1] == {"type": "text", "text": "[Image attached: a.png]"}


def test_files_count_against_the_budget_and_an_older_message_makes_way():
    text = AttachedFile(name="long.txt", kind="text", text="word " * 400)
    old = HistoryItem(1, "user", "Read", (text,))
    new = HistoryItem(2, "user", "Next")
    context = select_context(system_prompt="", history=[old, new], model="m", budget=300)
    assert [m["content"] for m in context.messages] == ["Next"]
    roomy = select_context(system_prompt="", history=[old, new], model="m", budget=1000)
    assert len(roomy.messages) == 2 and roomy.prompt_tokens > 400


async def test_stored_images_are_read_into_the_request_just_before_the_call(settings, tmp_path):
    """Out of the transaction that stored the message: the request holds the file's name
    until the reply is about to call the model."""
    from django.core.files.storage import default_storage

    settings.MEDIA_ROOT = tmp_path
    name = default_storage.save("attachments/x/a.png", ContentFile(b"PNGDATA"))
    item = HistoryItem(1, "user", "Look", (AttachedFile("a.png", "image", stored=name),))
    context = select_context(system_prompt="", history=[item], model="m", accepts_images=True)
    request = {"model": "m", "messages": context.messages}
    sent = await attachments.with_images(request)
    assert sent["messages"][0]["content"][1]["image_url"]["url"] == (
        "data:image/png;base64,UE5HREFUQQ=="
    )
    assert request["messages"][0]["content"][1]["image_url"]["url"].startswith("stored-")
    plain = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
    assert await attachments.with_images(plain) is plain


async def test_an_image_gone_from_the_storage_fails_the_reply_with_a_sentence(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    part = {"type": "image_url", "image_url": {"url": "stored-attachment:attachments/gone.png"}}
    with pytest.raises(ModelError) as failed:
        await attachments.with_images({"messages": [{"role": "user", "content": [part]}]})
    assert failed.value.code == "attachment_missing"


@pytest.mark.django_db
def test_two_posts_of_one_batch_cannot_both_claim_an_upload(owner, personas, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    conversation = services.start_conversation(user=owner)
    upload = Attachment(
        conversation=conversation, kind="text", name="n.txt", content_type="text/plain", size=1
    )
    upload.file.save("n.txt", ContentFile(b"n"))
    posts = [
        Post(owner, conversation.pk, text, uuid.uuid4().hex, "x", attachments=(upload.pk,))
        for text in ("First", "Second")
    ]
    first, second = post_messages(posts)
    assert isinstance(first, services.PreparedReply)
    assert isinstance(second, ChatError)
    # The first post's reply is still streaming in the batch, or the file is gone: refused.
    assert second.code in ("attachment_not_found", "reply_in_progress")
    upload.refresh_from_db()
    assert upload.message_id == first.created[0].pk
