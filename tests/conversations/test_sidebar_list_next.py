"""The sidebar list's Rename and Pin go back to the page the list is on, search kept, even when
the list was fetched alone as one typed."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from conversations import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(owner, personas):
    conversation = services.start_conversation(user=owner)
    services.rename_conversation(user=owner, conversation_id=conversation.pk, title="Bread")
    return conversation


def nexts(response) -> set[str]:
    found = re.findall(r'name="next" value="([^"]*)"', response.content.decode())
    return {html.unescape(value) for value in found}


def test_the_fetched_list_sends_rename_and_pin_back_to_the_asking_page(client, owner, conversation):
    client.force_login(owner)
    page = reverse("conversation", args=[conversation.pk])
    response = client.get(reverse("conversation_list"), {"q": "bread", "page": page})
    assert nexts(response) == {f"{page}?q=bread"}


def test_a_cleared_search_sends_them_back_to_the_page_alone(client, owner, conversation):
    client.force_login(owner)
    page = reverse("conversation", args=[conversation.pk])
    response = client.get(reverse("conversation_list"), {"q": "", "page": f"{page}?q=old"})
    assert nexts(response) == {page}


@pytest.mark.parametrize("page", ["", "https://evil.test/", "//evil.test/", "c/x/"])
def test_a_page_that_is_not_ours_falls_back_to_the_chat(client, owner, conversation, page):
    client.force_login(owner)
    response = client.get(reverse("conversation_list"), {"q": "bread", "page": page})
    assert nexts(response) == {"/?q=bread"}


def test_a_full_page_keeps_its_own_address_and_other_parameters(client, owner, conversation):
    client.force_login(owner)
    response = client.get(reverse("compare_view"), {"c": str(conversation.pk), "q": "bread"})
    assert nexts(response) == {f"/compare/view/?c={conversation.pk}&q=bread"}
