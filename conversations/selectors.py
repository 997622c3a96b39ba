"""Reads that pages share: plain keyword-only functions, one query each.

Conversation search finds a conversation whose title, or one of whose messages, matches:

- on PostgreSQL, with full-text search in the `simple` configuration (no stemming and no stop
  words, so it treats Korean and English alike): every word of the query, in any order, as
  the start of a word (`recipe bread` finds "A bread recipe", `서울` finds "서울에서");
  or else the whole query as a substring (`찌개` finds "김치찌개", a Korean compound with no
  space to split on; `C++` finds "C++", whose `+` no parser keeps);
- on SQLite, every space-separated term of the query as a substring, in any order.

Both find what people type; PostgreSQL is stricter about words (`ecipe` finds nothing there,
`recipe` still does). There is no index: the substring half, which Korean compounds need, is
something no full-text (GIN) index serves, so PostgreSQL reads the user's own messages either
way, narrowed to that user's by the conversation's foreign-key index. (A GIN expression index
would also be a PostgreSQL-only migration in a project that runs on SQLite too.)
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)

from .attachments import load_payloads
from .models import Conversation, Message, Role

SIDEBAR_LIMIT = 100
# How many messages a page (or a scroll-up) loads.
PAGE_SIZE = 50
# Words of a query taken into account; a longer query is a paste, not a search.
SEARCH_MAX_WORDS = 12
# Letters and digits of any script: what PostgreSQL's parser makes words of.
WORD = re.compile(r"[^\W_]+")


def search_words(query: str) -> list[str]:
    """The words full-text search looks for: a lone Latin letter or digit (the `C` of `C++`)
    would match as the start of nearly every word, so it is left to the substring match."""
    words = [w for w in WORD.findall(query) if len(w) > 1 or not w.isascii()]
    return words[:SEARCH_MAX_WORDS]


def _prefix_query(words: list[str]) -> SearchQuery:
    # The words hold letters and digits only, so the raw tsquery needs no further quoting.
    return SearchQuery(
        " & ".join(f"{word}:*" for word in words), config="simple", search_type="raw"
    )


def _matching_messages(query: str, user: Any) -> QuerySet[Message]:
    """The user's messages that match `query`, in any version (`conversations.tree`)."""
    messages = Message.objects.filter(conversation__user=user)
    if connection.vendor == "postgresql":
        words = search_words(query)
        by_text = Q(content__icontains=query)
        if words:
            by_text |= Q(search=_prefix_query(words))
        texts = messages.annotate(search=SearchVector("content", config="simple"))
        return texts.filter(by_text)
    for term in query.split()[:SEARCH_MAX_WORDS]:
        messages = messages.filter(content__icontains=term)
    return messages


def _matching(query: str, user: Any) -> Q:
    """Which of the user's conversations match `query`, as a filter for one query."""
    texts = Q(pk__in=_matching_messages(query, user).values("conversation_id"))
    if connection.vendor == "postgresql":
        words = search_words(query)
        by_title = Q(title__icontains=query)
        if words:
            by_title |= Q(search=_prefix_query(words))
        titles = Conversation.objects.filter(user=user).annotate(
            search=SearchVector("title", config="simple")
        )
        return Q(pk__in=titles.filter(by_title).values("pk")) | texts
    by_title = Q()
    for term in query.split()[:SEARCH_MAX_WORDS]:
        by_title &= Q(title__icontains=term)
    return by_title | texts


def _found_message(query: str, user: Any) -> Subquery:
    """A conversation's newest message that matches `query`: its link opens the path that
    holds it (`services.show_message`), whichever version it is."""
    found = _matching_messages(query, user).filter(conversation_id=OuterRef("pk"))
    return Subquery(found.order_by("-id").values("id")[:1])


def _blank() -> Q:
    """A conversation nobody has used yet: no message, no title of its own, not pinned."""
    has_messages = Exists(Message.objects.filter(conversation=OuterRef("pk")))
    return Q(~has_messages, title="", pinned=False)


def blank_conversations(*, user: Any) -> QuerySet[Conversation]:
    """The user's blank conversations, newest first: what New chat and Reset leave when no
    message follows. `services.start_new_chat` makes the newest one new again, the sidebar
    lists one only while it is open, and `/` shows the new-chat page for it."""
    return Conversation.objects.owned_by(user).filter(_blank()).order_by("-updated_at")


def newest_conversation(*, user: Any) -> tuple[Conversation | None, bool]:
    """The user's most recently active conversation, and whether it is blank: one query."""
    newest = (
        Conversation.objects.owned_by(user)
        .filter(archived_at=None)
        .annotate(is_blank=ExpressionWrapper(_blank(), output_field=BooleanField()))
        .order_by("-updated_at")
        .first()
    )
    return newest, bool(newest is not None and newest.is_blank)


def sidebar_conversations(
    *, user: Any, query: str = "", current_id: Any = None
) -> list[Conversation]:
    """The user's conversations for the sidebar, pinned first then newest: one query.

    A blank conversation is listed only while it is the one open (`current_id`): New chat
    or Reset followed by nothing leaves no empty "New chat" behind. An archived one only when
    a search finds it.
    """
    conversations: QuerySet[Conversation] = Conversation.objects.owned_by(user).select_related(
        "persona"
    )
    shown = ~_blank()
    if current_id:
        shown |= Q(pk=current_id)
    conversations = conversations.filter(shown)
    if not query:
        conversations = conversations.filter(archived_at=None)
    if query:
        conversations = conversations.filter(_matching(query, user)).annotate(
            found_id=_found_message(query, user)
        )
    return list(conversations.order_by("-pinned", "-updated_at")[:SIDEBAR_LIMIT])


def mark_context(page: list[Message], context_from_id: int | None) -> None:
    """Flag the messages the latest reply's model call no longer saw (`context_from_id`)."""
    for message in page:
        message.excluded = bool(context_from_id) and message.pk < context_from_id


def message_page(
    conversation: Conversation, *, before: int | None = None, context_from_id: Any = False
) -> tuple[list[Message], bool]:
    """Up to PAGE_SIZE messages of the active path before `before` (or the newest), oldest
    first, and whether older ones exist.

    The same few queries whatever the number of messages or forks: the conversation's
    skeleton (`conversations.tree`), the page's rows, and (rarely) the context of the newest
    answer when none is on the page.
    """
    tree = Message.objects.tree(conversation.pk)
    roles = tree.nodes
    path = [
        pk
        for pk in tree.path()
        if roles[pk].role in (Role.USER, Role.ASSISTANT) and (before is None or pk < before)
    ]
    has_older = len(path) > PAGE_SIZE
    page = list(Message.objects.filter(pk__in=path[-PAGE_SIZE:]).with_usage().order_by("id"))
    tree.number(page)
    load_payloads(page)
    if context_from_id is False:
        replies = [m for m in page if m.role == Role.ASSISTANT]
        if replies:
            context_from_id = replies[-1].context_from_id
        else:
            # No answer among the page (rare): the newest one of the path before it.
            older = [pk for pk in path[:-PAGE_SIZE] if roles[pk].role == Role.ASSISTANT]
            context_from_id = (
                Message.objects.filter(pk=older[-1]).values_list("context_from_id", flat=True)[0]
                if older
                else None
            )
    mark_context(page, context_from_id)
    return page, has_older


def archived_conversations(*, user: Any) -> QuerySet[Conversation]:
    """The user's archived conversations, the most recently archived first."""
    return (
        Conversation.objects.owned_by(user)
        .filter(archived_at__isnull=False)
        .select_related("persona")
        .order_by("-archived_at")
    )
