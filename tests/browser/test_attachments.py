"""Attachments in the page: paste an image and the simulator describes it, attach a PDF and it
is quoted, a model that reads no images is named before anything is sent, and another user
opening a file's address gets 404. The new-chat page takes files with its first message, with
or without JavaScript."""

from __future__ import annotations

import base64
import time

import pytest
from playwright.sync_api import expect

from conversations.models import Attachment, ChatModel, Conversation, Persona
from tests.browser.helpers import last_reply, reply_text, wait_for_status, wait_until_ready
from tests.files import image_bytes, pdf_bytes

pytestmark = pytest.mark.browser

PASTE = """([name, type, data]) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name, { type }));
    const box = document.querySelector("#message-input");
    box.focus();
    const options = { clipboardData: transfer, bubbles: true, cancelable: true };
    box.dispatchEvent(new ClipboardEvent("paste", options));
}"""


def paste(page, name: str, content_type: str, data: bytes) -> None:
    page.evaluate(PASTE, [name, content_type, base64.b64encode(data).decode()])


def vision_chat(chat, accepts: bool = True):
    page = chat()
    ChatModel.objects.update_or_create(
        name=page.conversation.effective_model, defaults={"accepts_images": accepts}
    )
    page.reload()
    wait_until_ready(page)
    return page


def send_text(page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def test_a_pasted_image_is_shown_and_described_by_the_model(chat):
    page = vision_chat(chat)
    paste(page, "screenshot.png", "image/png", image_bytes(320, 200))
    chip = page.locator("#attachment-tray .attachment-chip")
    expect(chip).to_have_attribute("data-state", "ready")
    send_text(page, "What do you see?")
    wait_for_status(page, "complete")
    assert "Images: 1 (320×200)" in reply_text(page)
    expect(page.locator("#attachment-tray")).to_be_hidden()
    # The message shows a thumbnail, live and after a reload, that opens the full image.
    question = page.locator('#messages > [data-role="user"]').last
    thumbnail = question.get_by_role("img", name="screenshot.png")
    expect(thumbnail).to_be_visible()
    assert page.evaluate("(img) => img.naturalWidth", thumbnail.element_handle()) == 320
    page.reload()
    wait_until_ready(page)
    link = page.locator('#messages > [data-role="user"] a.attachment-image').last
    expect(link.get_by_role("img", name="screenshot.png")).to_be_visible()
    response = page.request.get(link.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"] == "image/png"


def test_an_image_for_a_model_that_reads_none_is_refused_before_sending(chat):
    page = vision_chat(chat, accepts=False)
    paste(page, "photo.png", "image/png", image_bytes())
    expect(page.locator("#chat-error")).to_have_text(
        "This model does not read images. Remove the image, or pick a model that accepts images."
    )
    expect(page.locator("#attachment-tray")).to_be_hidden()
    assert not Attachment.objects.exists()
    # The picker may switch the model while the page is open: read at sending time too.
    page.evaluate("document.getElementById('composer').dataset.acceptsImages = 'true'")
    paste(page, "photo.png", "image/png", image_bytes())
    expect(page.locator("#attachment-tray .attachment-chip")).to_have_attribute(
        "data-state", "ready"
    )
    page.evaluate("document.getElementById('composer').dataset.acceptsImages = 'false'")
    send_text(page, "Look")
    expect(page.locator("#chat-error")).to_contain_text("This model does not read images.")
    expect(page.locator("#messages > .message")).to_have_count(0)


def test_a_picked_pdf_is_quoted_in_the_answer(chat):
    page = chat()
    page.locator("#attach-input").set_input_files(
        {
            "name": "report.pdf",
            "mimeType": "application/pdf",
            "buffer": pdf_bytes("Revenue grew 12 percent"),
        }
    )
    expect(page.locator("#attachment-tray .attachment-chip")).to_have_attribute(
        "data-state", "ready"
    )
    send_text(page, "Summarise the report")
    wait_for_status(page, "complete")
    assert "From «report.pdf»: «Revenue grew 12 percent»" in reply_text(page)
    question = page.locator('#messages > [data-role="user"]').last
    expect(question.locator(".attachment-file")).to_contain_text("report.pdf")


DROP = """([name, type, text]) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([text], name, { type }));
    const form = document.getElementById("composer");
    const options = { dataTransfer: transfer, bubbles: true, cancelable: true };
    form.dispatchEvent(new DragEvent("dragover", options));
    form.dispatchEvent(new DragEvent("drop", options));
}"""


def test_a_dropped_file_is_attached_and_can_be_taken_back(chat):
    page = chat()
    page.evaluate(DROP, ["first.md", "text/markdown", "# Dropped notes"])
    page.evaluate(DROP, ["second.csv", "text/csv", "a,b"])
    chips = page.locator("#attachment-tray .attachment-chip")
    expect(chips).to_have_count(2)
    expect(chips.last).to_have_attribute("data-state", "ready")
    expect(chips.first).to_have_attribute("data-state", "ready")
    page.get_by_role("button", name="Remove second.csv").click()
    expect(chips).to_have_count(1)
    send_text(page, "Read it")
    wait_for_status(page, "complete")
    assert "From «first.md»: «# Dropped notes»" in reply_text(page)
    assert "second.csv" not in reply_text(page)
    # The server forgot the one taken back (the page told it without waiting).
    deadline = time.monotonic() + 5
    while Attachment.objects.count() > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(Attachment.objects.values_list("name", flat=True)) == ["first.md"]


def test_a_refused_file_says_why_and_is_not_kept(chat):
    page = chat()
    page.locator("#attach-input").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"\x00\x01binary\xff"}
    )
    expect(page.locator("#chat-error")).to_have_text(
        "notes.txt is not a text file: it is not UTF-8 text."
    )
    expect(page.locator("#attachment-tray")).to_be_hidden()
    assert not Attachment.objects.exists()


def test_a_file_of_a_kind_the_server_refuses_is_refused_before_uploading(chat):
    """Dropped, pasted or picked with "All files": checked against what the picker offers."""
    page = chat()
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if r.method == "POST" else None)
    page.evaluate(DROP, ["backup.zip", "application/zip", "PK"])
    expect(page.locator("#chat-error")).to_contain_text("backup.zip is not a supported file.")
    expect(page.locator("#attachment-tray")).to_be_hidden()
    # Code the server reads as text, which a browser gives no content type.
    page.evaluate(DROP, ["main.go", "", "package main"])
    expect(page.locator("#attachment-tray .attachment-chip")).to_have_attribute(
        "data-state", "ready"
    )
    expect(page.locator("#chat-error")).to_be_hidden()
    assert len(uploads) == 1
    assert list(Attachment.objects.values_list("name", flat=True)) == ["main.go"]


def test_another_users_attachment_address_is_a_404(chat, login):
    page = chat()
    page.locator("#attach-input").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"private notes"}
    )
    expect(page.locator("#attachment-tray .attachment-chip")).to_have_attribute(
        "data-state", "ready"
    )
    send_text(page, "Keep these")
    wait_for_status(page, "complete")
    address = page.locator('#messages > [data-role="user"] a.attachment-file').get_attribute("href")
    assert page.request.get(address).status == 200
    stranger = login("stranger")
    assert stranger.request.get(address).status == 404
    assert last_reply(page).get_attribute("data-status") == "complete"


# The new-chat page: files go with its form and the first message carries them.


def open_new_chat(login, **options):
    page = login(**options)
    page.goto("/c/new/")
    if options.get("java_script_enabled", True):
        wait_until_ready(page)
    return page


def test_files_picked_on_the_new_chat_page_go_with_the_first_message(login):
    assistant = Persona.objects.default()
    ChatModel.objects.update_or_create(
        name=assistant.effective_model, defaults={"accepts_images": True}
    )
    page = open_new_chat(login)
    expect(page.get_by_role("button", name="Attach files")).to_be_visible()
    page.locator("#attach-input").set_input_files(
        [
            {"name": "screenshot.png", "mimeType": "image/png", "buffer": image_bytes(320, 200)},
            {
                "name": "notes.md",
                "mimeType": "text/markdown",
                "buffer": b"# Launch checklist\nBe done",
            },
        ]
    )
    # Listed before sending; a pasted one joins them and × takes it out again.
    paste(page, "extra.csv", "text/csv", b"a,b")
    chips = page.locator("#attachment-tray .attachment-chip")
    names = ["screenshot.png", "notes.md", "extra.csv"]
    expect(chips.locator(".attachment-name")).to_have_text(names)
    page.get_by_role("button", name="Remove extra.csv").click()
    expect(chips).to_have_count(2)
    assert page.evaluate("document.getElementById('attach-input').files.length") == 2
    send_text(page, "What did I attach?")
    page.wait_for_url("**/c/*/")
    wait_for_status(page, "complete")
    answer = reply_text(page)
    assert "Images: 1 (320×200)" in answer
    assert "From «notes.md»: «# Launch checklist»" in answer
    assert "extra.csv" not in answer
    question = page.locator('#messages > [data-role="user"]').last
    expect(question.get_by_role("img", name="screenshot.png")).to_be_visible()
    expect(question.locator(".attachment-file")).to_contain_text("notes.md")
    expect(page.locator("#attachment-tray")).to_be_hidden()
    conversation = Conversation.objects.get(user=page.user)
    assert conversation.persona == assistant
    assert sorted(a.name for a in conversation.attachments.exclude(message=None)) == [
        "notes.md",
        "screenshot.png",
    ]


def test_the_new_chat_page_says_when_the_chosen_personas_model_reads_no_images(login):
    chef = Persona.objects.get(name_en="Chef")
    chef.model = "sim-vision"
    chef.save()
    ChatModel.objects.create(name="sim-vision", label="Simulator vision", accepts_images=True)
    sentence = (
        "This persona's model does not read images. Remove the image, or pick a persona whose "
        "model accepts images."
    )
    page = open_new_chat(login)
    # The default persona's model reads no images: a pasted one is refused at once.
    paste(page, "photo.png", "image/png", image_bytes())
    expect(page.locator("#chat-error")).to_have_text(sentence)
    expect(page.locator("#attachment-tray")).to_be_hidden()
    page.get_by_role("radio", name="Chef").check()
    paste(page, "photo.png", "image/png", image_bytes())
    expect(page.locator("#attachment-tray .attachment-chip")).to_have_count(1)
    expect(page.locator("#chat-error")).to_be_hidden()
    # Another persona chosen after: said before sending, and nothing is sent.
    page.get_by_role("radio", name="Assistant", exact=True).check()
    expect(page.locator("#chat-error")).to_have_text(sentence)
    send_text(page, "Look")
    expect(page.locator("#chat-error")).to_have_text(sentence)
    assert page.url.endswith("/c/new/") and not Conversation.objects.exists()
    page.get_by_role("radio", name="Chef").check()
    expect(page.locator("#chat-error")).to_be_hidden()


def test_without_javascript_the_new_chat_page_takes_files_and_says_why_one_is_refused(login):
    page = open_new_chat(login, java_script_enabled=False)
    files = page.locator("#attach-input")
    expect(files).to_be_visible()
    expect(page.locator("#attach-button")).to_be_hidden()
    files.set_input_files(
        [
            {"name": "good.md", "mimeType": "text/markdown", "buffer": b"# Fine"},
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"\x00\x01binary\xff"},
        ]
    )
    page.get_by_role("textbox", name="Message").fill("Read these")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chat-error")).to_have_text(
        "notes.txt is not a text file: it is not UTF-8 text."
    )
    expect(page.get_by_role("textbox", name="Message")).to_have_value("Read these")
    assert not Attachment.objects.exists()
    files.set_input_files({"name": "good.md", "mimeType": "text/markdown", "buffer": b"# Fine"})
    page.get_by_role("button", name="Send").click()
    page.wait_for_url("**/c/*/")
    conversation = Conversation.objects.get(user=page.user)
    assert [a.name for a in conversation.attachments.filter(message=None)] == ["good.md"]


def test_the_new_chat_page_refuses_a_file_of_a_refused_kind_and_keeps_the_others(login):
    page = open_new_chat(login)
    page.locator("#attach-input").set_input_files(
        [
            {"name": "plan.md", "mimeType": "text/markdown", "buffer": b"# The plan"},
            {"name": "setup.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ"},
        ]
    )
    expect(page.locator("#chat-error")).to_contain_text("setup.exe is not a supported file.")
    expect(page.locator(".attachment-tray .attachment-chip")).to_have_count(1)
    expect(page.locator(".attachment-tray")).to_contain_text("plan.md")
    names = page.locator("#attach-input").evaluate("input => [...input.files].map((f) => f.name)")
    assert names == ["plan.md"]  # what the form will send


def test_a_file_the_server_refuses_for_its_content_leaves_the_page_as_it_was(login):
    page = open_new_chat(login)
    page.locator("#attach-input").set_input_files(
        [
            {"name": "plan.md", "mimeType": "text/markdown", "buffer": b"# The plan"},
            # A kind the page takes; only the server, reading it, finds it is no text.
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"\x00\x01binary\xff"},
        ]
    )
    box = page.get_by_role("textbox", name="Message")
    box.fill("Read these")
    box.press("Enter")
    expect(page.locator("#chat-error")).to_have_text(
        "notes.txt is not a text file: it is not UTF-8 text."
    )
    # Nothing lost: the page, the message and both files stay, for the one to be taken out.
    assert page.url.endswith("/c/new/")
    expect(box).to_have_value("Read these")
    expect(page.locator(".attachment-tray .attachment-chip")).to_have_count(2)
    assert not Attachment.objects.exists()
    page.get_by_role("button", name="Remove notes.txt").click()
    box.press("Enter")
    page.wait_for_url("**/c/*/")
    wait_for_status(page, "complete")
    conversation = Conversation.objects.get(user=page.user)
    sent = conversation.messages.get(role="user")
    assert sent.content == "Read these"
    assert [a.name for a in sent.attachments.all()] == ["plan.md"]
