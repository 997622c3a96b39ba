"""What the model's server says when it fails is its own business: the user reads a sentence of
ours (it may name the HTTP status and the model, nothing the server wrote), and the server's
words go to the log, without the key. A failure is told for what it is: a server that could not
be reached is not one that stopped responding."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from conversations.models import Message, Status
from simulator import Fault

from .sockets import logged_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer"),
]

KEY = "sk-abcdef0123456789abcdef"
INTERNAL_URL = "http://10.0.0.7:8080/internal"
# What a proxy in front of a model wrote: where it forwards to, and the request's header as it
# normalised it.
SERVER_WORDS = f"upstream {INTERNAL_URL} refused AUTHORIZATION: BEARER {KEY.upper()}"


@pytest.fixture
def keyed_model(model_server, settings, caplog):
    settings.OPENAI_API_KEY = KEY
    caplog.set_level(logging.INFO)
    return model_server


async def reply_to(owner, conversation, text: str) -> tuple[dict, list[dict]]:
    """The `reply.ended` frame of the reply to `text`, and every frame the socket received."""
    async with await logged_in(owner, conversation.pk) as chat:
        await chat.say(text)
        ended = await chat.until("reply.ended")
    return ended["message"], chat.frames


def assert_nothing_of_the_server(where: str, text: str) -> None:
    assert "10.0.0.7" not in text, f"the server's internal address is in {where}"
    assert KEY.lower() not in text.lower(), f"the API key is in {where}"


@pytest.mark.parametrize(
    ("fault", "ours"),
    [
        (Fault(kind="http", status=400, message=SERVER_WORDS), "rejected the request (HTTP 400)"),
        (Fault(kind="http", status=422, message=SERVER_WORDS), "HTTP 422"),
        (Fault(kind="http", status=500, message=SERVER_WORDS), "internal error (HTTP 500)"),
        (
            Fault(kind="error_event", after=2, message=SERVER_WORDS),
            "reported an error while answering",
        ),
    ],
    ids=["400", "422", "500", "error-in-the-stream"],
)
async def test_the_servers_error_text_is_logged_and_never_shown(
    owner, conversation, keyed_model, caplog, fault, ours
):
    """A model server (or the proxy before it) answers a failure with text of its own: it
    named an internal address and quoted the key in capitals. Shown word for word, as it was
    for a 400 or an error in the stream, both reached every tab and the database."""
    keyed_model.config.fault = fault
    ended, frames = await reply_to(owner, conversation, "Hello")
    stored = await Message.objects.aget(pk=ended["id"])
    assert stored.status == Status.ERROR and ours in stored.error
    assert_nothing_of_the_server("the stored error", stored.error)
    assert_nothing_of_the_server("a socket frame", json.dumps(frames, ensure_ascii=False))
    assert INTERNAL_URL in caplog.text, "the server's own words are logged for the operator"
    assert_nothing_of_the_server("the log", caplog.text.replace(INTERNAL_URL, ""))


def closed_port() -> int:
    """A port nothing listens on: bound once, then let go."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_server_that_refuses_the_connection_could_not_be_reached(
    owner, conversation, keyed_model, settings, caplog
):
    """Nothing listens at OPENAI_BASE_URL (the model server is down, or the URL is wrong). The
    SDK reports that through aiohttp as a connect timeout, and the user was told the server
    "stopped responding, so the answer was cut short": no answer had started, and waiting
    will not help. It could not be reached; the log says where it was looked for."""
    port = closed_port()
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{port}/v1"
    ended, _frames = await reply_to(owner, conversation, "Hello")
    assert ended["status"] == Status.ERROR
    assert "could not be reached" in ended["error"]
    assert "stopped responding" not in ended["error"]
    assert f"127.0.0.1:{port}" in caplog.text


@pytest.mark.parametrize(
    ("fault", "told"),
    [("drop:3", "connection to the model server was lost"), ("stall:3", "stopped responding")],
    ids=["dropped", "stalled"],
)
async def test_a_server_that_fails_mid_answer_is_not_told_as_unreachable(
    owner, conversation, keyed_model, fault, told
):
    """The control for the test above: a server that answered, then dropped the connection
    or fell silent, keeps its own sentence, and what arrived is kept."""
    ended, _frames = await reply_to(owner, conversation, f"Hello [[sim:fault={fault}]]")
    assert ended["status"] == Status.ERROR and ended["content"]
    assert told in ended["error"] and "could not be reached" not in ended["error"]
