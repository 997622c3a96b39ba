"""Share links: the owner makes one, the page shows the snapshot to anyone without logging in,
revoked or unknown links answer 404, and a logged-in visitor continues a copy of their own."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from conversations import services, sharing
from conversations.models import Conversation, Message, Role, ShareLink

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(owner, personas):
    conversation = services.start_conversation(
        user=owner, overrides={"system_prompt": "You are a secret pirate."}
    )
    conversation.title = "Trip plans"
    conversation.save()
    Message.objects.create(conversation=conversation, role=Role.USER, content="Where to go?")
    Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="Go to **Busan** <img src=x onerror=alert(1)>",
        model="demo-model",
    )
    return conversation


def share(client, conversation, **data):
    return client.post(reverse("share_conversation", args=[conversation.pk]), data)


def shared_page(client, link):
    return client.get(reverse("shared", args=[link.token]), headers={"accept-language": "en"})


def test_the_owner_makes_a_link_and_is_shown_it(client, owner, conversation):
    client.force_login(owner)
    response = share(client, conversation)
    link = ShareLink.objects.get()
    assert response.status_code == 302
    page = client.get(response.url, headers={"accept-language": "en"})
    html = page.content.decode()
    assert 'aria-label="Share link"' in html
    assert f"/s/{link.token}/" in html
    assert ">Revoke<" in html
    assert len(link.token) >= 40


def test_another_user_cannot_share_a_conversation(client, outsider, conversation):
    client.force_login(outsider)
    assert share(client, conversation).status_code == 404
    assert not ShareLink.objects.exists()


def test_the_menu_has_share(client, owner, conversation):
    client.force_login(owner)
    html = client.get(reverse("conversation", args=[conversation.pk])).content.decode()
    assert reverse("share_conversation", args=[conversation.pk]) in html
    assert 'name="include_system_prompt"' in html


def test_anyone_reads_the_page_without_logging_in(client, owner, conversation):
    link = sharing.share_conversation(user=owner, conversation_id=conversation.pk)
    response = shared_page(client, link)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Where to go?" in html
    assert "<strong>Busan</strong>" in html
    assert "<img" not in html  # sanitized exactly as in the chat
    assert 'data-role="assistant"' in html
    assert 'id="message-input"' not in html  # no composer
    assert 'class="sidebar"' not in html  # no sidebar
    assert "Content-Security-Policy" in response.headers


def test_the_page_is_not_indexed(client, owner, conversation):
    link = sharing.share_conversation(user=owner, conversation_id=conversation.pk)
    response = shared_page(client, link)
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert '<meta name="robots" content="noindex">' in response.content.decode()


def test_a_message_added_later_is_not_shared(client, owner, conversation):
    link = sharing.share_conversation(user=owner, conversation_id=conversation.pk)
    Message.objects.create(conversation=conversation, role=Role.USER, content="A later secret")
    assert "A later secret" not in shared_page(client, link).content.decode()


def test_only_the_active_path_is_shared(client, owner, conversation):
    first = conversation.messages.get(role=Role.USER)
    Message.objects.create(
        conversation=conversation, role=Role.USER, content="Another version", parent=None
    )
    link = sharing.share_conversation(user=owner, conversation_id=conversation.pk)
    html = shared_page(client, link).content.decode()
    assert "Another version" in html
    assert first.content not in html


def test_the_system_prompt_is_not_shared_unless_ticked(client, owner, conversation):
    client.force_login(owner)
    share(client, conversation)
    link = ShareLink.objects.get()
    assert link.system_prompt == ""
    assert "secret pirate" not in shared_page(client, link).content.decode()


def test_the_system_prompt_is_shared_when_ticked(client, owner, conversation):
    client.force_login(owner)
    share(client, conversation, include_system_prompt="on")
    link = ShareLink.objects.get()
    client.logout()
    assert "You are a secret pirate." in shared_page(client, link).content.decode()


def test_a_revoked_link_is_404(client, owner, conversation):
    link = sharing.share_conversation(user=owner, conversation_id=conversation.pk)
    client.force_login(owner)
    response = client.post(reverse("revoke_share", args=[link.pk]))
    assert response.status_code == 302
    client.logout()
    assert shared_page(client, link).status_code == 404


def test_another_user_cannot_revoke_a_link(client, owner, outsider, conversation):
    link = sharing.share_conversation(user=owner, conversation_id=conversation.pk)
    client.force_login(outsider)
    assert client.post(reverse("revoke_share", args=[link.pk])).status_code == 404
    link.refresh_from_db()
    assert link.revoked_at is None


def test_an_unknown_link_is_404(client, db):
    assert client.get(reverse("shared", args=["no-such-token"])).status_code == 404


def test_the_owner_lists_their_links_only(client, owner, outsider, conversation):
    mine = sharing.share_conversation(user=owner, conversation_id=conversation.pk)
    other = services.start_conversation(user=outsider)
    theirs = sharing.share_conversation(user=outsider, conversation_id=other.pk)
    client.force_login(owner)
    html = client.get(reverse("share_links")).content.decode()
    assert mine.token in html
    assert theirs.token not in html


def test_continue_copies_the_snapshot_into_the_visitors_account(
    client, owner, outsider, conversation
):
    link = sharing.share_conversation(user=owner, conversation_id=conversation.pk)
    Message.objects.create(conversation=conversation, role=Role.USER, content="A later secret")
    client.force_login(outsider)
    response = client.post(reverse("continue_shared", args=[link.token]))
    copy = Conversation.objects.get(user=outsider)
    assert response.url == reverse("conversation", args=[copy.pk])
    copies = list(copy.messages.order_by("id"))
    assert [(m.role, m.content) for m in copies] == [
        ("user", "Where to go?"),
        ("assistant", "Go to **Busan** <img src=x onerror=alert(1)>"),
    ]
    assert copies[0].parent_id is None
    assert copies[1].parent_id == copies[0].pk
    assert all(m.imported for m in copies)
    assert copy.system_prompt != "You are a secret pirate."
    assert client.get(response.url).status_code == 200


def test_continue_needs_a_login(client, owner, conversation):
    link = sharing.share_conversation(user=owner, conversation_id=conversation.pk)
    response = client.post(reverse("continue_shared", args=[link.token]))
    assert response.status_code == 302
    assert reverse("login") in response.url
    assert Conversation.objects.count() == 1


def test_a_revoked_link_cannot_be_continued(client, owner, outsider, conversation):
    link = sharing.share_conversation(user=owner, conversation_id=conversation.pk)
    sharing.revoke_share(user=owner, share_id=link.pk)
    client.force_login(outsider)
    assert client.post(reverse("continue_shared", args=[link.token])).status_code == 404


@override_settings(CHAT_SHARING=False)
def test_sharing_off_hides_share_and_closes_the_pages(client, owner, conversation):
    link = ShareLink.objects.create(conversation=conversation, snapshot=[])
    client.force_login(owner)
    html = client.get(reverse("conversation", args=[conversation.pk])).content.decode()
    assert reverse("share_conversation", args=[conversation.pk]) not in html
    assert share(client, conversation).status_code == 404
    client.logout()
    assert shared_page(client, link).status_code == 404


def test_the_share_pages_speak_korean(client, owner, conversation):
    link = sharing.share_conversation(user=owner, conversation_id=conversation.pk)
    client.force_login(owner)
    listing = client.get(reverse("share_links"), headers={"accept-language": "ko"})
    assert 'aria-label="공유 링크"' in listing.content.decode()
    page = client.get(reverse("shared", args=[link.token]), headers={"accept-language": "ko"})
    assert "이 대화 이어가기" in page.content.decode()


def test_in_korean_revoking_a_link_is_not_called_cancel(client, owner, conversation):
    client.force_login(owner)
    response = share(client, conversation)
    html = client.get(response.url, headers={"accept-language": "ko"}).content.decode()
    # "취소" is every Cancel button's word (the page's delete dialog has one).
    assert '<button type="submit" class="danger">공유 중지</button>' in html


def test_the_shared_pages_date_ends_no_sentence_twice(client, owner, conversation):
    client.force_login(owner)
    share(client, conversation)
    link = ShareLink.objects.get()
    ShareLink.objects.filter(pk=link.pk).update(created_at="2026-12-01T09:05:00Z")
    html = shared_page(client, link).content.decode()
    assert "Shared on Dec. 1, 2026, 9:05 a.m.: a read-only copy of a conversation." in html
    assert "a.m.." not in html
