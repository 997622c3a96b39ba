"""A page whose socket the server refuses or keeps failing stops reconnecting, says why and
offers a Reconnect button; a page that only lost its network keeps trying, as long as it takes.

The sockets pass through Playwright's routeWebSocket, which counts each attempt and can close
the page's side as the server or the network would."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations import services
from tests.browser.helpers import wait_until_ready

pytestmark = pytest.mark.browser

SOCKETS = "**/ws/conversations/**"
# Longer than the page's wait before a fourth attempt (2 s after the third, with jitter).
LONGER_THAN_A_RETRY = 3_000


class Attempts:
    """Every socket the page opens, handed to `decide(ws, number)`; the default passes it on
    to the server."""

    def __init__(self, page, decide=None) -> None:
        self.count = 0
        self.open: list = []
        self.decide = decide or (lambda ws, number: self.through(ws))
        page.route_web_socket(SOCKETS, self.handle)

    def handle(self, ws) -> None:
        self.count += 1
        self.decide(ws, self.count)

    def through(self, ws) -> None:
        self.open.append((ws, ws.connect_to_server()))

    def drop(self) -> None:
        """The network goes away under every open socket."""
        for ws, server in self.open:
            server.close(code=1001)
            ws.close(code=1006, reason="network down")
        self.open.clear()


def test_a_socket_the_server_keeps_failing_stops_and_offers_to_reconnect(login):
    """The server accepts and then fails every socket (1011: a bug in connect, a database
    that refuses). Reconnecting for ever, the page hammered the server twice a second after
    each `ready`-less failure and never told the user; now it stops after three, says why,
    and tries again when asked."""
    page = login()
    conversation = services.start_conversation(user=page.user)
    attempts = Attempts(page, lambda ws, number: ws.close(code=1011, reason="server error"))
    page.goto(f"/c/{conversation.pk}/")

    reconnect = page.get_by_role("button", name="Reconnect")
    expect(reconnect).to_be_visible(timeout=10_000)
    expect(page.locator("#connection-status")).to_have_text(
        "The server failed while connecting this conversation."
    )
    page.wait_for_timeout(LONGER_THAN_A_RETRY)
    assert attempts.count == 3

    attempts.decide = lambda ws, number: attempts.through(ws)
    reconnect.click()
    wait_until_ready(page)
    expect(reconnect).to_be_hidden()
    assert attempts.count == 4


def log_out(page, conversation) -> None:
    page.context.clear_cookies()


def delete_the_conversation(page, conversation) -> None:
    services.delete_conversation(user=page.user, conversation_id=conversation.pk)


@pytest.mark.parametrize(
    ("refusal", "sentence"),
    [(log_out, "Log in to chat."), (delete_the_conversation, "This conversation does not exist.")],
    ids=["logged-out", "deleted"],
)
def test_a_socket_the_server_refuses_stops_at_once_and_says_why(login, refusal, sentence):
    """Logged out in another tab, or the conversation deleted there: after the next drop every
    attempt is refused (4401, 4404). The page stops at the first refusal and shows the sentence
    the server sent with it, with a Reconnect button for when the cause is gone."""
    page = login()
    conversation = services.start_conversation(user=page.user)
    attempts = Attempts(page)
    page.goto(f"/c/{conversation.pk}/")
    wait_until_ready(page)

    refusal(page, conversation)
    attempts.drop()
    expect(page.get_by_role("button", name="Reconnect")).to_be_visible(timeout=10_000)
    status = page.locator("#connection-status")
    expect(status).to_have_attribute("data-state", "closed")
    expect(status).to_have_text(sentence)
    page.wait_for_timeout(LONGER_THAN_A_RETRY)
    assert attempts.count == 2
    # The refusal is told once, in the banner: not again as an error under the composer.
    expect(page.locator("#chat-error")).to_be_hidden()


def test_a_page_that_lost_its_network_keeps_trying_until_it_is_back(login):
    """The control: four attempts in a row find no network (1006, as a browser reports a
    socket that never opened); the page does not give up on them and is live again after."""
    page = login()
    conversation = services.start_conversation(user=page.user)
    attempts = Attempts(page)
    page.goto(f"/c/{conversation.pk}/")
    wait_until_ready(page)

    attempts.decide = lambda ws, number: (
        ws.close(code=1006, reason="offline") if number <= 5 else attempts.through(ws)
    )
    attempts.drop()
    expect(page.locator("#connection-status")).to_have_attribute(
        "data-state", "open", timeout=20_000
    )
    assert attempts.count == 6
    expect(page.get_by_role("button", name="Reconnect")).to_be_hidden()
