"""The terminal chatbot, driven through a pseudo-terminal against the simulator on a real port
and the test database (a file the child process opens)."""

from __future__ import annotations

import os
import re

import pytest
from django.core.management import CommandError, call_command

from conversations import services
from conversations.models import Conversation, Message, Persona, Role, Status
from tests import servers

from .terminal import PROMPT, Terminal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def terminal(model_server, personas, owner):
    """Start `manage.py chat ARGS` in a pty; every one started is closed after the test."""
    started: list[Terminal] = []
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DJANGO_DEBUG": "1",
        "DJANGO_SECRET_KEY": "tests-only-secret-key-not-for-production-use",
        "DATABASE_URL": servers.test_database_url(),
        "OPENAI_BASE_URL": model_server.base_url,
        "OPENAI_API_KEY": "sk-test-not-a-real-key",
        "OPENAI_READ_TIMEOUT": "5",
        "OPENAI_MAX_RETRIES": "0",
        "CHAT_FLUSH_SECONDS": "0.2",
        "CHAT_MODEL_TITLES": "0",
        "PYTHONUNBUFFERED": "1",
        "TERM": "dumb",
    }
    # The command must be async-safe on its own: no permission to call the ORM from its loop.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)

    def start(*args: str) -> Terminal:
        term = Terminal(["--no-color", *args], env)
        started.append(term)
        return term

    yield start
    for term in started:
        term.close()


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_the_terminal_chat_streams_the_reply_as_it_arrives_and_saves_it(terminal, owner):
    term = terminal("--user", "owner")
    term.read_until(PROMPT)
    term.type("Tell me about omelettes [[sim:tps=30,tokens=60]]\n")
    term.read_until("💬 Assistant> ")
    first = len(term.chunks)
    shown = term.read_until(PROMPT)

    # The reply came in many pieces over time, not at once at the end.
    pieces = term.chunks[first:]
    assert len(pieces) >= 5
    assert pieces[-1][0] - pieces[0][0] >= 1.0
    conversation = Conversation.objects.get(user=owner)
    user, reply = conversation.messages.order_by("id")
    assert (user.role, user.content) == (
        Role.USER,
        "Tell me about omelettes [[sim:tps=30,tokens=60]]",
    )
    assert reply.status == Status.COMPLETE
    assert words(reply.content) in words(shown)
    # Tokens used, after the reply.
    assert f"({reply.prompt_tokens} in · {reply.completion_tokens} out tokens)" in shown
    term.type("/quit\n")
    assert term.wait() == 0


def test_the_terminal_chat_resumes_a_browser_conversation_and_the_model_sees_its_history(
    terminal, owner, model_server
):
    conversation = services.start_conversation(user=owner)
    Message.objects.create(conversation=conversation, role=Role.USER, content="My name is Ada.")
    Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="Nice to meet you, Ada.",
        status=Status.COMPLETE,
    )
    term = terminal("--user", "owner", "--conversation", str(conversation.pk))
    history = term.read_until("Ctrl+D leaves.")
    term.read_until(PROMPT)
    assert "you> My name is Ada." in history
    assert "💬 Assistant> Nice to meet you, Ada." in history

    term.type("What is my name?\n")
    term.read_until(PROMPT)

    sent = model_server.config.requests[-1]["messages"]
    assert [(m["role"], m["content"]) for m in sent if m["role"] != "system"] == [
        ("user", "My name is Ada."),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "What is my name?"),
    ]
    assert conversation.messages.count() == 4
    assert Conversation.objects.count() == 1  # the same conversation, not a new one
    term.ctrl_d()
    assert term.wait() == 0


def test_ctrl_c_stops_the_reply_cleanly_and_saves_it_as_stopped(terminal, owner):
    term = terminal("--user", "owner")
    term.read_until(PROMPT)
    term.type("Write a long story [[sim:tps=10,tokens=400]]\n")
    term.read_until("You asked")
    term.ctrl_c()
    shown = term.read_until(PROMPT)

    assert "[stopped: what arrived is kept]" in shown
    reply = Message.objects.get(role=Role.ASSISTANT)
    assert reply.status == Status.STOPPED
    assert reply.content.startswith("## ") and len(reply.content) < 1000
    # Still running: Ctrl+C stopped the answer, not the program.
    term.type("/quit\n")
    assert term.wait() == 0


def test_ctrl_c_at_the_prompt_says_how_to_leave_and_ctrl_d_leaves(terminal):
    term = terminal("--user", "owner")
    term.read_until(PROMPT)
    term.ctrl_c()
    assert "(Ctrl+D or /quit leaves.)" in term.read_until(PROMPT)
    term.ctrl_d()
    term.read_until("Bye.")
    assert term.wait() == 0
    assert Conversation.objects.count() == 0  # nothing asked, nothing stored


def test_new_persona_and_temperature_do_what_they_say(terminal, owner, model_server):
    term = terminal("--user", "owner")
    term.read_until(PROMPT)
    term.type("/temperature 0.3\n")
    assert "Temperature 0.3 from the next answer on." in term.read_until(PROMPT)
    term.type("First question\n")
    term.read_until(PROMPT)
    term.type("/persona chef\n")
    assert "Now talking to 🍳 Chef, in a new conversation." in term.read_until(PROMPT)
    term.type("Second question\n")
    term.read_until(PROMPT)
    term.type("/new\n")
    term.read_until(PROMPT)
    term.type("Third question\n")
    term.read_until(PROMPT)
    term.type("/temperature 9\n")
    assert "The temperature is a number from 0 to 2." in term.read_until(PROMPT)
    term.type("/persona nobody\n")
    assert "No persona “nobody”." in term.read_until(PROMPT)
    term.type("/quit\n")
    assert term.wait() == 0

    first, second, third = Conversation.objects.owned_by(owner).order_by("created_at")
    chef = Persona.objects.get(name_en="Chef")
    assert (first.persona, first.temperature) == (Persona.objects.default(), 0.3)
    assert (second.persona, second.temperature) == (chef, chef.temperature)
    assert third.persona == chef
    assert [m.content for m in third.messages.filter(role=Role.USER)] == ["Third question"]
    assert model_server.config.requests[0]["temperature"] == 0.3


def test_an_unknown_user_or_another_users_conversation_is_refused(owner, outsider, personas):
    with pytest.raises(CommandError, match="No user “nobody”"):
        call_command("chat", user="nobody")
    theirs = services.start_conversation(user=outsider)
    with pytest.raises(CommandError, match=f"owner has no conversation {theirs.pk}"):
        call_command("chat", user="owner", conversation=str(theirs.pk))
    with pytest.raises(CommandError, match="No persona “Pirate”"):
        call_command("chat", user="owner", persona="Pirate")


def test_continue_asks_for_the_rest_of_an_answer_cut_off_at_the_token_limit(terminal, owner):
    conversation = services.start_conversation(user=owner, overrides={"max_completion_tokens": 8})
    term = terminal("--user", "owner", "--conversation", str(conversation.pk))
    term.read_until("Ctrl+D leaves.")
    term.read_until(PROMPT)
    term.type("Tell me everything\n")
    assert "[cut off at the token limit: /continue asks for the rest]" in term.read_until(PROMPT)
    cut_text = conversation.messages.get(role=Role.ASSISTANT).content
    term.type("/continue\n")
    term.read_until(PROMPT)
    term.type("/quit\n")
    assert term.wait() == 0
    _question, answer = conversation.messages.order_by("id")
    assert answer.content.startswith(cut_text) and len(answer.content) > len(cut_text)
    assert answer.status == Status.TRUNCATED


def test_the_terminal_continues_the_active_path_and_lists_the_last_forks(
    terminal, owner, model_server
):
    conversation = services.start_conversation(user=owner)
    question = Message.objects.create(conversation=conversation, role=Role.USER, content="Hi")
    for text in ("First answer", "Second answer", "Third answer"):
        Message.objects.create(
            conversation=conversation, role=Role.ASSISTANT, content=text, parent=question
        )
    second = conversation.messages.get(content="Second answer")
    services.select_version(
        user=owner, conversation_id=conversation.pk, message_id=second.pk, version=2
    )
    term = terminal("--user", "owner", "--conversation", str(conversation.pk))
    history = term.read_until("Ctrl+D leaves.")
    term.read_until(PROMPT)
    assert "Second answer" in history and "Third answer" not in history
    term.type("/versions\n")
    listed = words(term.read_until(PROMPT))
    assert "3 versions" in listed
    assert "1. First answer * 2. Second answer 3. Third answer" in listed

    term.type("And then?\n")
    term.read_until(PROMPT)
    sent = model_server.config.requests[-1]["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == [
        "Hi",
        "Second answer",
        "And then?",
    ]
    assert conversation.messages.get(content="And then?").parent_id == second.pk
    term.ctrl_d()
    assert term.wait() == 0


def test_what_the_model_writes_cannot_drive_the_terminal():
    from conversations.management.commands.chat import printable

    assert printable("bold \x1b[1mtext\x1b[0m\x07 and a\ttab\n") == "bold [1mtext[0m and a\ttab\n"


def test_log_lines_never_land_in_the_conversation(terminal, owner):
    """The model's server goes away mid-answer: its WARNING used to be printed in the middle
    of the answer's text, with an INFO line, before the app's own sentence. The answer and the
    sentence now come whole; the WARNING (stderr, here the same terminal) follows them, and
    nothing below WARNING is shown."""
    term = terminal("--user", "owner")
    term.read_until(PROMPT)
    term.type("Tell me a story [[sim:tps=40,tokens=200,fault=drop:30]]\n")
    term.read_until("💬 Assistant> ")
    shown = term.read_until(PROMPT)
    term.type("/quit\n")
    assert term.wait() == 0

    reply = Message.objects.get(role=Role.ASSISTANT)
    assert reply.status == Status.ERROR and reply.content
    sentence = f"[failed: {reply.error}]"
    answer, after = shown.split(sentence)
    assert words(answer) == words(reply.content), "the answer, whole and alone"
    assert "WARNING conversations.llm" in after, "the server's words, after the app's own"
    assert " INFO " not in term.output


def test_a_log_file_takes_every_log_line_and_the_terminal_none(terminal, owner, tmp_path):
    log = tmp_path / "chat.log"
    term = terminal("--user", "owner", "--log-file", str(log))
    term.read_until(PROMPT)
    term.type("Tell me a story [[sim:tps=40,tokens=200,fault=drop:30]]\n")
    shown = term.read_until(PROMPT)
    term.type("/quit\n")
    assert term.wait() == 0

    reply = Message.objects.get(role=Role.ASSISTANT)
    assert f"[failed: {reply.error}]" in shown
    assert "WARNING" not in term.output and " INFO " not in term.output
    lines = log.read_text()
    assert "WARNING conversations.llm" in lines
    assert f"INFO conversations.replies reply {reply.pk} failed" in lines
