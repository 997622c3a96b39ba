"""A session that ends closes its chat sockets: a tab left open after logging out in another
chats no more, while the user's other sessions go on."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import AsyncClient

from conversations import services

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
