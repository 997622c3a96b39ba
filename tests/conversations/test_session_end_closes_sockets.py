"""A session that ends closes its chat sockets: a tab left open after logging out in another
chats no more, while the user's other sessions go on."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.models import Session
from django.test import AsyncClient
from django.utils import timezone

from conversations import services, session_watch

from .chat_client import session_cookie, site_socket

pytestmark = [pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-test-password"  # tests/conftest.py's make_user


async def logged_in(user) -> tuple[AsyncClient, bytes]:
    """A browser logged in as `user`: its client for pages, its cookie for sockets."""
    client = AsyncClient()
    await client.aforce_login(user)
    name = settings.SESSION_COOKIE_NAME
    return client, f"{name}={client.cookies[name].value}".encode()


async def open_tab(conversation_id, cookie: bytes):
    socket = site_socket(conversation_id, cookie)
    connected, _ = await socket.connect()
    assert connected
    assert (await socket.receive_json_from())["type"] == "ready"
    return socket


async def closed_with(socket) -> int:
    """The code the server closed the socket with (frames before it are skipped)."""
    while True:
        output = await socket.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return output["code"]


async def still_chats(socket) -> str:
    """Send a message on the socket; the reply's status once it ended."""
    await socket.send_json_to(
        {"type": "message.send", "client_id": uuid.uuid4().hex, "content": "Still here?"}
    )
    while True:
        frame = await socket.receive_json_from(timeout=10)
        assert frame["type"] != "error", frame
        if frame["type"] == "reply.ended":
            return frame["message"]["status"]


async def test_logging_out_closes_every_tab_of_that_session_and_no_other(owner, conversation):
    browser, cookie = await logged_in(owner)
    first_tab = await open_tab(conversation.pk, cookie)
    second_tab = await open_tab(conversation.pk, cookie)
    phone = await open_tab(conversation.pk, await session_cookie(owner))

    response = await browser.post("/accounts/logout/")
    assert response.status_code == 302

    assert await closed_with(first_tab) == 4401
    assert await closed_with(second_tab) == 4401
    # The same user's other session is not logged out: its socket goes on chatting.
    assert await still_chats(phone) == "complete"
    await phone.disconnect()


async def test_a_tab_of_a_logged_out_session_cannot_open_again(owner, conversation):
    browser, cookie = await logged_in(owner)
    tab = await open_tab(conversation.pk, cookie)
    await browser.post("/accounts/logout/")
    assert await closed_with(tab) == 4401
    again = site_socket(conversation.pk, cookie)
    await again.connect()
    assert (await again.receive_json_from())["code"] == "not_authenticated"
    assert await closed_with(again) == 4401


async def test_a_new_password_closes_the_other_sessions_tabs_not_its_own(owner, conversation):
    browser, cookie = await logged_in(owner)
    own_tab = await open_tab(conversation.pk, cookie)
    other_browser_tab = await open_tab(conversation.pk, await session_cookie(owner))

    new = "another-long-test-password"
    response = await browser.post(
        "/accounts/password/change/", {"oldpassword": PASSWORD, "password1": new, "password2": new}
    )
    assert response.status_code == 302

    assert await closed_with(other_browser_tab) == 4401
    assert await still_chats(own_tab) == "complete"
    await own_tab.disconnect()


async def test_turning_an_account_off_closes_all_its_tabs(owner, outsider, conversation):
    tabs = [await open_tab(conversation.pk, await session_cookie(owner)) for _ in range(2)]
    others_conversation = await database_sync_to_async(
        lambda: services.start_conversation(user=outsider)
    )()
    bystander = await open_tab(others_conversation.pk, await session_cookie(outsider))

    owner.is_active = False
    await database_sync_to_async(owner.save)()

    for tab in tabs:
        assert await closed_with(tab) == 4401
    assert await still_chats(bystander) == "complete"
    await bystander.disconnect()


async def test_a_password_an_admin_sets_closes_the_users_tabs(owner, conversation, make_user):
    root = await database_sync_to_async(make_user)("root", is_staff=True, is_superuser=True)
    admin_browser, _ = await logged_in(root)
    tabs = [await open_tab(conversation.pk, await session_cookie(owner)) for _ in range(2)]

    new = "set-by-the-admin-password"
    response = await admin_browser.post(
        f"/admin/auth/user/{owner.pk}/password/", {"password1": new, "password2": new}
    )
    assert response.status_code == 302

    for tab in tabs:
        assert await closed_with(tab) == 4401


async def test_an_admin_setting_their_own_password_keeps_that_sessions_tabs(make_user):
    root = await database_sync_to_async(make_user)("root", is_staff=True, is_superuser=True)
    own = await database_sync_to_async(lambda: services.start_conversation(user=root))()
    browser, cookie = await logged_in(root)
    own_tab = await open_tab(own.pk, cookie)
    other_browser_tab = await open_tab(own.pk, await session_cookie(root))

    new = "set-by-the-admin-password"
    response = await browser.post(
        f"/admin/auth/user/{root.pk}/password/", {"password1": new, "password2": new}
    )
    assert response.status_code == 302

    assert await closed_with(other_browser_tab) == 4401
    assert await still_chats(own_tab) == "complete"
    await own_tab.disconnect()


# A session that ends without its sockets hearing of it: the layer down at the moment, or no
# event at all. The process looks again at its sockets' sessions (`session_watch.py`).


@pytest.fixture
def quick_session_checks(settings):
    settings.CHAT_SESSION_CHECK_SECONDS = 0.2


def key_of(cookie: bytes) -> str:
    return cookie.decode().split("=", 1)[1]


@pytest.mark.usefixtures("isolated_channel_layer", "quick_session_checks")
async def test_a_logout_while_the_layer_is_down_closes_its_tabs_at_the_next_look(
    owner, conversation, settings
):
    """Before, the logout's event was lost with the layer and the tab chatted on, logged out,
    until it reconnected."""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "tests.conversations.test_reply_endings.FlakyLayer"}
    }
    browser, cookie = await logged_in(owner)
    tab = await open_tab(conversation.pk, cookie)
    phone = await open_tab(conversation.pk, await session_cookie(owner))

    layer = get_channel_layer()
    layer.failing = True
    response = await browser.post("/accounts/logout/")
    assert response.status_code == 302
    layer.failing = False

    assert await closed_with(tab) == 4401
    assert await still_chats(phone) == "complete"
    await phone.disconnect()


@pytest.mark.usefixtures("quick_session_checks")
async def test_a_session_that_runs_out_closes_its_tabs(owner, conversation):
    _, cookie = await logged_in(owner)
    tab = await open_tab(conversation.pk, cookie)
    phone = await open_tab(conversation.pk, await session_cookie(owner))

    await database_sync_to_async(Session.objects.filter(session_key=key_of(cookie)).update)(
        expire_date=timezone.now() - timedelta(seconds=1)
    )

    assert await closed_with(tab) == 4401
    assert await still_chats(phone) == "complete"
    await phone.disconnect()


@pytest.mark.usefixtures("quick_session_checks")
async def test_a_password_changed_without_a_signal_closes_every_tab_of_the_user(
    owner, outsider, conversation
):
    """A password written straight to the database (a script, another tool) sends no signal:
    the sessions' password hash no longer matches, as a page would find."""
    tabs = [await open_tab(conversation.pk, await session_cookie(owner)) for _ in range(2)]
    others_conversation = await database_sync_to_async(
        lambda: services.start_conversation(user=outsider)
    )()
    bystander = await open_tab(others_conversation.pk, await session_cookie(outsider))

    await database_sync_to_async(type(owner).objects.filter(pk=owner.pk).update)(
        password=make_password("written-by-a-script")
    )

    for tab in tabs:
        assert await closed_with(tab) == 4401
    assert await still_chats(bystander) == "complete"
    await bystander.disconnect()


async def test_sessions_are_checked_a_few_dozen_a_trip(owner, make_user):
    """A process's every session in one trip would hold the database thread, and every
    message sent meanwhile, for as long as they all take."""
    users = [owner] + [await database_sync_to_async(make_user)(f"user{i}") for i in range(3)]
    trips = []
    real = session_watch.ended

    def counting(sessions):
        trips.append(len(sessions))
        return real(sessions)

    watch = session_watch.SessionWatch()
    tabs = []
    for user in users:
        conversation = await database_sync_to_async(
            lambda u=user: services.start_conversation(user=u)
        )()
        tabs.append(await open_tab(conversation.pk, await session_cookie(user)))
    sockets = list(session_watch.watch().sockets)
    assert len(sockets) == len(users)
    for socket in sockets:
        watch.sockets.add(socket)
    original = session_watch.SESSIONS_PER_TRIP
    session_watch.SESSIONS_PER_TRIP, session_watch.ended = 3, counting
    try:
        await watch.check()
    finally:
        session_watch.SESSIONS_PER_TRIP, session_watch.ended = original, real
    assert trips == [3, 1]
    for tab in tabs:
        await tab.disconnect()
