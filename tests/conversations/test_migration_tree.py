"""Existing conversations become trees of one path each: every message follows the one
before it in its conversation (`0008_message_tree`), on a database that holds data."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("conversations", "0007_account_emails")
TREE = ("conversations", "0008_message_tree")


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.fixture
def old_database():
    apps = migrate(BEFORE)
    yield apps
    executor = MigrationExecutor(connection)
    migrate(executor.loader.graph.leaf_nodes("conversations")[0])


def test_each_message_follows_the_one_before_it_in_its_conversation(old_database):
    apps = old_database
    User = apps.get_model("auth", "User")
    Conversation = apps.get_model("conversations", "Conversation")
    Message = apps.get_model("conversations", "Message")
    user = User.objects.create(username="before-the-tree")
    one = Conversation.objects.create(user=user, title="one")
    two = Conversation.objects.create(user=user, title="two")
    # Interleaved, as conversations written at the same time are.
    made = []
    for index in range(6):
        conversation = one if index % 3 else two
        role = (
            "user"
            if len([m for m in made if m.conversation_id == conversation.pk]) % 2 == 0
            else "assistant"
        )
        made.append(
            Message.objects.create(conversation=conversation, role=role, content=f"m{index}")
        )

    apps = migrate(TREE)
    Message = apps.get_model("conversations", "Message")
    rows = {m.pk: m for m in Message.objects.all()}
    for conversation in (one, two):
        ids = [m.pk for m in made if m.conversation_id == conversation.pk]
        assert [rows[pk].parent_id for pk in ids] == [None, *ids[:-1]]
        assert all(rows[pk].selected_at == rows[pk].created_at for pk in ids)

    # The page, as the app reads it once every migration after the tree's has run too.
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes("conversations")[0])
    from conversations import selectors
    from conversations.models import Conversation as Current

    page, _ = selectors.message_page(Current.objects.get(pk=one.pk))
    assert [m.content for m in page] == ["m1", "m2", "m4", "m5"]
