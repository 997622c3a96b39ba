"""Conversation search: full-text on PostgreSQL, substrings on SQLite, the same answers."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import services
from conversations.models import Conversation, Message, Role
from conversations.selectors import search_words, sidebar_conversations

pytestmark = pytest.mark.django_db


@pytest.fixture
def chats(owner, outsider, personas):
    def chat(user, title: str, *texts: str) -> Conversation:
        conversation = services.start_conversation(user=user)
        services.rename_conversation(user=user, conversation_id=conversation.pk, title=title)
        for text in texts:
            Message.objects.create(conversation=conversation, role=Role.USER, content=text)
        return conversation

    return {
        "bread": chat(owner, "Baking", "Is there a good recipe for sourdough bread?"),
        "seoul": chat(owner, "여행 계획", "다음 주에 서울에서 만나요"),
        "stew": chat(owner, "저녁 메뉴", "김치찌개 끓이는 법 알려줘"),
        "cpp": chat(owner, "C++ templates", "SFINAE, explained"),
        "theirs": chat(outsider, "Their bread recipe", "bread recipe 서울 김치찌개"),
    }


def found(owner, query: str) -> set[str]:
    names = {}
    for conversation in sidebar_conversations(user=owner, query=query):
        names[conversation.title] = conversation
    titles = {
        "Baking": "bread",
        "여행 계획": "seoul",
        "저녁 메뉴": "stew",
        "C++ templates": "cpp",
        "Their bread recipe": "theirs",
    }
    return {titles[title] for title in names}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("bread recipe", {"bread"}),  # words in any order, apart
        ("RECIPE", {"bread"}),  # any case
        ("sourdo", {"bread"}),  # the start of a word, as one types
        ("서울", {"seoul"}),  # a Korean word with a particle attached (서울에서)
        ("찌개", {"stew"}),  # part of a Korean compound with no space to split on
        ("C++", {"cpp"}),  # punctuation
        ("여행", {"seoul"}),  # the title
        ("recipe pancakes", set()),  # every word must match
        ("%", set()),  # a LIKE wildcard is a character, not "anything"
    ],
)
def test_search_finds_ones_own_conversations_by_title_and_text(owner, chats, query, expected):
    assert found(owner, query) == expected


def test_search_is_one_query(owner, chats):
    with CaptureQueriesContext(connection) as queries:
        sidebar_conversations(user=owner, query="bread recipe")
    assert len(queries) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL full-text search")
def test_on_postgresql_the_search_is_full_text_in_the_simple_configuration(owner, chats):
    with CaptureQueriesContext(connection) as queries:
        sidebar_conversations(user=owner, query="bread recipe")
    sql = queries[0]["sql"]
    assert "to_tsvector" in sql and "@@" in sql
    assert "'simple'" in sql or "simple" in sql


def test_query_words_are_letters_and_digits_of_any_script():
    assert search_words("bread & recipe | !x:* '; DROP") == ["bread", "recipe", "DROP"]
    assert search_words("김치찌개, 서울에서!") == ["김치찌개", "서울에서"]
    assert search_words("%_") == search_words("C++") == []
    assert search_words("밥 a 1 42") == ["밥", "42"]
