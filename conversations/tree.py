"""A conversation is a tree of messages; the page shows one path through it.

Every message has a parent (the message it follows) except the first, and the first messages
(roots) are siblings of each other. Regenerating an answer or editing a message adds a sibling:
nothing is ever replaced. The *active path* starts at the roots and, at each fork, takes the
child chosen last (`Message.selected_at`; a new message counts as chosen, ties go to the newer
one). A child is always created after its parent, so along any path the ids grow.

The walk is plain Python over the conversation's skeleton, loaded in one query whatever the
number of messages or forks (`MessageQuerySet.trees`): no query per message or per fork.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Node:
    id: int
    parent_id: int | None
    selected_at: datetime
    role: str = ""


class Tree:
    """The skeleton of one conversation's messages: who follows whom, and which was chosen."""

    def __init__(self, nodes: Iterable[Node] = ()) -> None:
        self.nodes: dict[int, Node] = {}
        self.children: dict[int | None, list[int]] = {}
        for node in sorted(nodes, key=lambda n: n.id):
            self.nodes[node.id] = node
        for node in self.nodes.values():
            # A parent that is not in the conversation (or not older) makes a root: the walk
            # below can then never loop.
            parent = node.parent_id
            if parent is not None and (parent not in self.nodes or parent >= node.id):
                parent = None
            self.children.setdefault(parent, []).append(node.id)

    @classmethod
    def of(cls, messages: Iterable[Any]) -> Tree:
        """The tree of messages already loaded (a prefetch): no query."""
        return cls(Node(m.pk, m.parent_id, m.selected_at, m.role) for m in messages)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def parent_of(self, message_id: int) -> int | None:
        parent = self.nodes[message_id].parent_id
        return parent if parent in self.nodes and parent < message_id else None

    def siblings(self, message_id: int) -> list[int]:
        """The message and its siblings (the versions at its fork), oldest first."""
        return self.children.get(self.parent_of(message_id), [])

    def version(self, message_id: int) -> tuple[int, int]:
        """Its place among its siblings (from 1), and their number."""
        siblings = self.siblings(message_id)
        return siblings.index(message_id) + 1, len(siblings)

    def chosen_child(self, parent_id: int | None) -> int | None:
        children = self.children.get(parent_id)
        if not children:
            return None
        return max(children, key=lambda i: (self.nodes[i].selected_at, i))

    def path_to(self, message_id: int) -> list[int]:
        """The message's ancestors from the root, and the message."""
        path = [message_id]
        while (parent := self.parent_of(path[-1])) is not None:
            path.append(parent)
        return path[::-1]

    def path(self, through: int | None = None) -> list[int]:
        """The active path: from the roots, at each fork the child chosen last. With
        `through`, the path that holds that message and then goes on as chosen below it."""
        path = self.path_to(through) if through is not None else []
        while (child := self.chosen_child(path[-1] if path else None)) is not None:
            path.append(child)
        return path

    def end(self) -> int | None:
        """The last message of the active path: what a new message follows."""
        path = self.path()
        return path[-1] if path else None

    def choose(self, message_id: int, at: datetime) -> None:
        """Record a choice made in the database, so this tree's paths follow it."""
        node = self.nodes[message_id]
        self.nodes[message_id] = Node(node.id, node.parent_id, at, node.role)

    def number(self, messages: Iterable[Any]) -> None:
        """Give each message object its `version` and `versions` (see `version`)."""
        for message in messages:
            message.version, message.versions = self.version(message.pk)
