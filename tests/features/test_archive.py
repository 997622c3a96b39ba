"""Archive: a conversation put away leaves the sidebar and the opening page's choice, is listed
under Archived, is still found by a search, and comes back when taken out of the archive or
when a message is sent in it."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse

from conversations import selectors, services
from conversations.models import Conversation, Message, Role
from tests.conversations.chat_client import ChatSocket

pytestmark = pytest.mark.django_db(transaction=True)


def with_message(user, title: str) -> Conversation:
    conversation = services.start_conversation(user=user)
    services.rename_conversation(user=user, conversation_id=conversation.pk, title=title)
    Message.objects.create(conversation=conversation, role=Role.USER, content=f"About {title}")
    return conversation


def archive(client: Client, conversation, archived: bool = True, **extra):
    data = {"archived": "on"} if archived else {}
    return client.post(reverse("archive_conversation", args=[conversation.pk]), data | extra)


def sidebar_titles(user, query: str = "") -> list[str]:
    return [c.title for c in selectors.sidebar_conversations(user=user, query=query)]


def test_an_archived_conversation_leaves_the_sidebar_and_is_listed_under_archived(owner):
    kept, put_away = with_message(owner, "Kept"), with_message(owner, "Put away")
    client = Client()
    client.force_login(owner)

    response = archive(client, put_away, next=reverse("chat"))
    assert response.status_code == 302 and response["Location"] == reverse("chat")
    assert sidebar_titles(owner) == ["Kept"]
    # The opening page goes to the newest conversation that is not archived.
    assert client.get(reverse("chat"))["Location"] == reverse("conversation", args=[kept.pk])
    page = client.get(reverse("archived_conversations")).content.decode()
    assert "Put away" in page and "Kept" not in page.split('class="share-list"')[1]
    # Still found by a search, marked.
    assert sidebar_titles(owner, "Put away") == ["Put away"]
    found = client.get(reverse("conversation", args=[kept.pk]), {"q": "Put away"})
    assert 'class="archived-mark">Archived<' in found.content.decode()
    # Its own page says so, and offers to take it out.
    opened = client.get(reverse("conversation", args=[put_away.pk])).content.decode()
    assert '<div class="archived-note" id="archived-note" role="note">' in opened
    assert "This conversation is archived." in opened
    # A conversation that is not archived has the note hidden, for a tab to show if it is.
    other = client.get(reverse("conversation", args=[kept.pk])).content.decode()
    assert '<div class="archived-note" id="archived-note" role="note" hidden>' in other

    assert archive(client, put_away, archived=False).status_code == 302
    assert sorted(sidebar_titles(owner)) == ["Kept", "Put away"]


def test_only_the_owner_archives(owner, outsider):
    conversation = with_message(owner, "Mine")
    client = Client()
    client.force_login(outsider)
    assert archive(client, conversation).status_code == 404
    conversation.refresh_from_db()
    assert conversation.archived_at is None
    assert client.get(reverse("archived_conversations")).status_code == 200
    assert "Mine" not in client.get(reverse("archived_conversations")).content.decode()


@pytest.mark.usefixtures("isolated_channel_layer")
async def test_a_message_in_an_archived_conversation_takes_it_back(owner, conversation):
    # Named already: the update its tabs hear is not the first message's title.
    await database_sync_to_async(services.rename_conversation)(
        user=owner, conversation_id=conversation.pk, title="Named"
    )
    await database_sync_to_async(services.set_archived)(
        user=owner, conversation_id=conversation.pk, archived=True
    )
    elsewhere = await database_sync_to_async(services.start_conversation)(user=owner)
    async with (
        ChatSocket(owner, conversation.pk) as socket,
        ChatSocket(owner, conversation.pk) as tab,
        ChatSocket(owner, elsewhere.pk) as other_conversation,
    ):
        await other_conversation.until("ready")
        await socket.send({"type": "message.send", "client_id": "m1", "content": "Back again"})
        # Every tab hears it is out of the archive (its note goes, and the sidebar's mark of
        # it in a tab of another conversation) with the message.
        for each in (socket, tab, other_conversation):
            updated = await each.until("conversation.updated")
            assert updated["conversation"]["id"] == str(conversation.pk)
            assert updated["conversation"]["archived"] is False
        assert (await socket.until("reply.ended"))["message"]["status"] == "complete"
    await database_sync_to_async(conversation.refresh_from_db)()
    assert conversation.archived_at is None


@pytest.mark.usefixtures("isolated_channel_layer")
async def test_a_message_in_a_conversation_not_archived_sends_no_update(owner, conversation):
    await database_sync_to_async(services.rename_conversation)(
        user=owner, conversation_id=conversation.pk, title="Named"
    )
    async with ChatSocket(owner, conversation.pk) as socket:
        await socket.send({"type": "message.send", "client_id": "m1", "content": "Hello"})
        await socket.until("reply.ended")
        assert socket.of_type("conversation.updated") == []


@database_sync_to_async
def menu_post(user, view: str, conversation, data: dict) -> None:
    """What the sidebar's menu of a conversation sends, as `user`."""
    client = Client()
    client.force_login(user)
    assert client.post(reverse(view, args=[conversation.pk]), data).status_code == 302


@pytest.mark.parametrize(
    ("view", "data", "expected"),
    [
        ("archive_conversation", {"archived": "on"}, {"archived": True}),
        ("pin_conversation", {"pinned": "on"}, {"pinned": True}),
        ("rename_conversation", {"title": "New  name"}, {"title": "New name"}),
    ],
)
@pytest.mark.usefixtures("isolated_channel_layer")
async def test_the_conversations_other_tabs_hear_of_a_change_from_the_menu(
    owner, conversation, view, data, expected
):
    other = await database_sync_to_async(services.start_conversation)(user=owner)
    async with (
        ChatSocket(owner, conversation.pk) as tab,
        ChatSocket(owner, other.pk) as elsewhere,
    ):
        await menu_post(owner, view, conversation, data)
        updated = (await tab.until("conversation.updated"))["conversation"]
        # A tab showing another conversation lists this one in its sidebar.
        listed = (await elsewhere.until("conversation.updated"))["conversation"]
    assert updated["id"] == listed["id"] == str(conversation.pk)
    assert updated | expected == updated == listed


@pytest.mark.usefixtures("isolated_channel_layer")
async def test_another_users_tabs_hear_nothing_of_it(owner, outsider, conversation):
    theirs = await database_sync_to_async(services.start_conversation)(user=outsider)
    async with (
        ChatSocket(outsider, theirs.pk) as stranger,
        ChatSocket(owner, conversation.pk) as tab,
    ):
        await stranger.until("ready")
        await menu_post(owner, "rename_conversation", conversation, {"title": "Private plans"})
        await tab.until("conversation.updated")
        assert await stranger.communicator.receive_nothing(timeout=0.3)
    assert "Private plans" not in str(stranger.frames)


@pytest.mark.usefixtures("isolated_channel_layer")
async def test_a_tab_catching_up_hears_the_conversation_as_it_is_now(owner, conversation):
    async with ChatSocket(owner, conversation.pk) as tab:
        # Archived after the socket opened, and no tab told (a page rendered before it, whose
        # socket joins after the news went out, is in the same place).
        await database_sync_to_async(services.set_archived)(
            user=owner, conversation_id=conversation.pk, archived=True
        )
        await tab.send({"type": "subscribe", "after_id": None})
        updated = await tab.until("conversation.updated")
        assert updated["conversation"]["archived"] is True
        assert (await tab.receive())["type"] == "sync"
