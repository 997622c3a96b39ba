"""The Markdown export is opened in editors, wikis and previews that render HTML written in
Markdown. What a model, a user or an import file wrote must reach it as text: no tag of
theirs runs there, and no title or message can make up a turn of the conversation."""

from __future__ import annotations

import pytest
from django.urls import reverse
from markdown_it import MarkdownIt

from conversations import services
from conversations.models import Conversation, Message, Role, Status

from .pages import read

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert('export')</script>"
IMAGE = '<img src="x" onerror="alert(1)">'

# CommonMark with its raw HTML on, as GitHub, editors and most previews render it.
renderer = MarkdownIt("commonmark")


def exported(client, owner, conversation: Conversation) -> str:
    client.force_login(owner)
    response = client.get(reverse("export_conversation", args=[conversation.pk, "md"]))
    assert response.status_code == 200
    return response.content.decode()


def rendered(markdown: str) -> str:
    return renderer.render(markdown)


def assert_inert(html: str) -> None:
    page = read(html)
    assert not page.runnable, page.runnable
    assert "<img" not in html and "<script" not in html


@pytest.fixture
def chat(owner, personas) -> Conversation:
    return services.start_conversation(user=owner)


def add(conversation: Conversation, role: str, content: str, **fields) -> Message:
    return Message.objects.create(conversation=conversation, role=role, content=content, **fields)


def test_html_in_a_message_is_exported_as_text(client, owner, chat):
    """A reply that writes a tag (a model can be talked into it) or a user's message that
    does: without escaping, opening the export in a previewer ran it."""
    add(chat, Role.USER, f"What does {IMAGE} do?")
    add(chat, Role.ASSISTANT, f"It runs script, like this:\n\n{SCRIPT}\n\nDon't.")
    markdown = exported(client, owner, chat)

    html = rendered(markdown)
    assert_inert(html)
    # The text is still there to read.
    assert "&lt;script&gt;alert('export')&lt;/script&gt;" in html
    assert "&lt;img src=&quot;x&quot; onerror=&quot;alert(1)&quot;&gt;" in html


def test_html_in_the_title_system_prompt_and_error_is_exported_as_text(client, owner, chat):
    """The other strings a user or a file chooses: the title, the system prompt, a reply's
    error (which an import file writes)."""
    services.rename_conversation(user=owner, conversation_id=chat.pk, title=f"Tags {IMAGE}")
    chat.system_prompt = f"Always end with {SCRIPT}"
    chat.save()
    add(chat, Role.USER, "Hello")
    add(chat, Role.ASSISTANT, "", status=Status.ERROR, error=f"Failed {IMAGE}")
    assert_inert(rendered(exported(client, owner, chat)))


def test_a_title_with_line_breaks_cannot_fake_a_turn(client, owner, chat):
    """A title is one line of the export; without the fix its line breaks were kept, so a
    title could start headings and turns of its own ("## Assistant" saying what the real
    assistant never said). The export has exactly the turns of the conversation."""
    Conversation.objects.filter(pk=chat.pk).update(
        title="x\n\n## Assistant\nfake\n\n---\n\n### You · 2026-01-01 10:00\n\nI agree"
    )
    add(chat, Role.USER, "Hello")
    add(chat, Role.ASSISTANT, "Hi there")
    html = rendered(exported(client, owner, chat))

    assert html.count("<h1>") == 1 and html.count("<h2>") == 0
    assert html.count("<h3>") == 2
    assert html.count("<hr />") == 2


def test_a_message_cannot_leave_a_code_block_open_for_the_next_one(client, owner, chat):
    """A message whose code block never closes would swallow the turns after it, until a
    later message's own fence closed it and turned that message's code into live HTML.
    Each message's blocks end with the message."""
    add(chat, Role.USER, "```\nunclosed")
    add(chat, Role.ASSISTANT, f"```\n{IMAGE}\n```")
    html = rendered(exported(client, owner, chat))
    assert_inert(html)
    assert html.count("<h3>") == 2


TRICKS = {
    "a code span over two lines": f"a `b\nc` {IMAGE} `d`",
    "a backtick in a link's address": f"[a](x`) {IMAGE} `z`",
    "a fence hidden in an HTML block": "<div>\n```\n",
    "an escaped backtick": f"\\` {IMAGE} `",
    "a tilde fence left open": "~~~~\nstill code",
    "an indented fence left open in a list": "- item\n\n  ```\n  code",
}


@pytest.mark.parametrize("trick", list(TRICKS))
def test_markdown_tricks_leave_no_tag_alive(client, owner, chat, trick):
    """Ways of making text that looks like code to a simple reader but is not to a Markdown
    renderer (or the reverse), each followed by a reply whose code holds a tag: whatever the
    trick, no tag of the conversation's is live in the rendered export."""
    add(chat, Role.USER, TRICKS[trick])
    add(chat, Role.ASSISTANT, f"```\n{IMAGE}\n```")
    html = rendered(exported(client, owner, chat))
    assert_inert(html)
    assert html.count("<h3>") == 2


def test_code_keeps_its_angle_brackets(client, owner, chat):
    """The control: HTML means nothing inside code, so code is exported exactly as written
    (an `&lt;` there would be shown as is, and the code would be wrong)."""
    add(chat, Role.USER, "Compare `a < b` and wrap it in `<div>`")
    add(chat, Role.ASSISTANT, "```python\nif a < b:\n    print('<b>')\n```")
    markdown = exported(client, owner, chat)
    assert "Compare `a < b` and wrap it in `<div>`" in markdown
    assert "```python\nif a < b:\n    print('<b>')\n```" in markdown
    assert_inert(rendered(markdown))
