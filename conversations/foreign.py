"""Conversations exported by ChatGPT or Open WebUI, read as this app's own export.

Someone moving here brings their history: ChatGPT's data export (the zip it mails, or the
`conversations.json` inside it) and Open WebUI's "Export chats" file. Both keep a conversation
as a tree of messages, with the branch shown last named (ChatGPT's `current_node`, Open
WebUI's `currentId`), as this app does: their regenerated answers and edited questions become
versions here, and the branch they showed is the one shown.

`translated` turns such a document into this app's export format (`exports.FORMAT`), which
`exports.parse_import` then checks as it checks any file: nothing here is trusted. What has no
place here is left out: system messages, the tools' calls and answers (browsing, code runs),
a reasoning model's thoughts, hidden context. An image in a message is named in its text, not
imported (the exports carry no file). The newest conversations are taken, as many as one
import holds (`exports.MAX_CONVERSATIONS`, `exports.MAX_IMPORT_MESSAGES`); `left_out` says how
many were not.

Every uploaded file is read in a process of its own (`read`, which runs this module), this
app's own exports too: ChatGPT's conversations.json runs to tens of megabytes of small objects,
and parsing it holds Python's lock for seconds (33 MB: 2.3 s for `json.loads`, 1.8 s more to
translate), which in the server would be seconds of every other user's replies; a file of any
format can be made of such objects. The child process holds only its own lock, gives its
memory back when it exits, and hands over what one import holds (a foreign export already cut
to the limits, this app's own as it is, anything else not at all) in pieces of at most
`PIECE_VALUES` values (`pieces`), which the server puts together a piece at a time, letting
the other threads run between two (`assembled`). It imports nothing of Django: what it writes
in a message's text comes translated from the parent (`Wording`).
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ZIP_MAGIC = b"PK\x03\x04"
# A message's longest text in an import (`exports.MAX_CONTENT_CHARS`, which checks it again).
MAX_CHARS = 200_000
CHATGPT_CONVERSATIONS = "conversations.json"


# How long the child may take to read a file at the import's limit (33 MB: about 5 s here).
READ_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Wording:
    """What the child writes into messages, in the importing user's language."""

    image: str = "[an image, not imported]"
    cut: str = "[cut: the rest is longer than a message here can be]"


@dataclass(frozen=True)
class Limits:
    """One import's limits (`exports`): the file's size, and what the translation keeps."""

    file_bytes: int
    conversations: int
    messages: int
    per_conversation: int


@dataclass
class Translated:
    # In this app's export format (`exports.message_document` and the rest).
    conversations: list[dict[str, Any]]
    # Conversations of the file not taken: over the limits of one import.
    left_out: int = 0


@dataclass
class Reading:
    """What the child found in a file: `kind` is "foreign" (ChatGPT's or Open WebUI's export:
    `document` is its conversations in this app's format, and `left_out` how many others it
    has), "ours" (a JSON object naming this app's format: `document`) or "other" (JSON of any
    other kind: nothing handed over)."""

    kind: str
    document: Any = None
    left_out: int = 0


class NotReadable(Exception):
    """What made a file unreadable: `code` (no_conversations, bad_zip, too_large, not_json,
    failed), and for too_large the unpacked `size`."""

    def __init__(self, code: str, size: int = 0) -> None:
        super().__init__(code)
        self.code = code
        self.size = size


def read(data: bytes, limits: Limits, wording: Wording, ours: str, make_way: Any) -> Reading:
    """Read an uploaded file in a child process (`ours` is the format this app's exports
    name); `make_way` is called between two pieces of its answer. Raises `NotReadable`."""
    options = json.dumps({"limits": asdict(limits), "wording": asdict(wording), "ours": ours})
    try:
        child = subprocess.run(
            [sys.executable, "-m", "conversations.foreign", options],
            input=data,
            capture_output=True,
            timeout=READ_TIMEOUT_SECONDS,
            cwd=Path(__file__).resolve().parent.parent,
            check=False,
        )
    except (subprocess.TimeoutExpired, OSError) as exc:
        logger.warning("reading an import failed: %r", exc)
        raise NotReadable("failed") from None
    lines = child.stdout.split(b"\n")
    try:
        answer = json.loads(lines[0])
        handed = answer.get("kind") in ("foreign", "ours")
        found = assembled(lines[1:], make_way) if handed else None
    except (ValueError, KeyError, IndexError, TypeError):
        logger.warning(
            "reading an import failed (exit %s): %s", child.returncode, child.stderr[-2000:]
        )
        raise NotReadable("failed") from None
    if "error" in answer:
        raise NotReadable(answer["error"], answer.get("size", 0))
    return Reading(answer["kind"], found, answer.get("left_out", 0))


def _child(options: dict[str, Any]) -> Iterator[str]:
    """The child's work: stdin is the file; the answer, a line of JSON and the pieces of what
    it hands over, goes to stdout."""
    limits, wording = Limits(**options["limits"]), Wording(**options["wording"])
    data = sys.stdin.buffer.read(limits.file_bytes + 1)
    try:
        data = unzipped(data, limits.file_bytes)
        document = json.loads(data.decode("utf-8-sig"), parse_constant=_no_constants)
    except NotReadable as problem:
        yield json.dumps({"error": problem.code, "size": problem.size})
        return
    except (UnicodeDecodeError, ValueError, RecursionError):
        yield json.dumps({"error": "not_json"})
        return
    if isinstance(document, dict) and document.get("format") == options["ours"]:
        yield json.dumps({"kind": "ours"})
        yield from pieces(document)
        return
    try:
        found = translated(document, limits, wording)
    except Exception:  # an export of theirs in a shape this reading does not expect
        yield json.dumps({"error": "shape"})
        return
    if found is None:
        yield json.dumps({"kind": "other"})
        return
    yield json.dumps({"kind": "foreign", "left_out": found.left_out})
    yield from pieces(found.conversations)


# The most values (containers, their keys, and what they hold) one piece of the child's answer
# carries: its `json.loads` in the server then holds Python's lock for a millisecond or two.
PIECE_VALUES = 2000


def _weight(value: Any, limit: int) -> int:
    """How many values `value` holds, itself included; counting stops past `limit`."""
    count = 0
    stack = [iter((value,))]
    while stack and count <= limit:
        for item in stack[-1]:
            count += 1
            if type(item) is dict:
                count += len(item)
                stack.append(iter(item.values()))
                break
            if type(item) is list:
                stack.append(iter(item))
                break
            if count > limit:
                break
        else:
            stack.pop()
    return count


def pieces(value: Any, limit: int = PIECE_VALUES) -> Iterator[str]:
    """`value` as lines of JSON, none of more than `limit` values: a small value whole
    (`["value", v]`); a large one as its opening (`["list", key]` or `["dict", key]`, `key` its
    place in the dict around it), runs of its small items (`["items", [...]]`,
    `["entries", {...}]`), its large ones the same way in turn, and `["end"]`."""
    if _weight(value, limit) <= limit:
        yield json.dumps(["value", value])
        return
    yield json.dumps(["dict" if type(value) is dict else "list", None])
    stack = [(type(value) is dict, iter(value.items() if type(value) is dict else value))]
    while stack:
        is_dict, items = stack[-1]
        run: list[Any] = []
        weight = 0
        for item in items:
            key, child = item if is_dict else (None, item)
            size = _weight(child, limit) + is_dict  # a dict's item holds its key too
            if size > limit and type(child) in (dict, list):
                if run:
                    yield _run(is_dict, run)
                    run = []
                child_is_dict = type(child) is dict
                yield json.dumps(["dict" if child_is_dict else "list", key])
                stack.append((child_is_dict, iter(child.items() if child_is_dict else child)))
                break
            if run and weight + size > limit:
                yield _run(is_dict, run)
                run, weight = [], 0
            run.append(item)
            weight += size
        else:
            if run:
                yield _run(is_dict, run)
            yield json.dumps(["end"])
            stack.pop()


def _run(is_dict: bool, run: list[Any]) -> str:
    return json.dumps(["entries", dict(run)] if is_dict else ["items", run])


def assembled(lines: Iterable[bytes | str], make_way: Any) -> Any:
    """The value `pieces` wrote, put together again; `make_way` is called after each piece."""
    stack: list[Any] = []
    result: Any = None
    for line in lines:
        if not line:
            continue
        kind, *rest = json.loads(line)
        if kind == "value":
            result = rest[0]
        elif kind in ("dict", "list"):
            container: Any = {} if kind == "dict" else []
            if stack:
                parent = stack[-1]
                if type(parent) is dict:
                    parent[rest[0]] = container
                else:
                    parent.append(container)
            else:
                result = container
            stack.append(container)
        elif kind == "items":
            stack[-1].extend(rest[0])
        elif kind == "entries":
            stack[-1].update(rest[0])
        elif kind == "end":
            stack.pop()
        else:
            raise ValueError(f"a piece of an unknown kind: {kind!r}")
        make_way()
    if stack:
        raise ValueError("the pieces end inside a value")
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: no database column holds them


def unzipped(data: bytes, limit: int) -> bytes:
    """The `conversations.json` of a ChatGPT export's zip; any other bytes as they are."""
    if not data.startswith(ZIP_MAGIC):
        return data
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entry = next(
                (
                    i
                    for i in archive.infolist()
                    if i.filename.rsplit("/", 1)[-1] == CHATGPT_CONVERSATIONS
                ),
                None,
            )
            if entry is None:
                raise NotReadable("no_conversations")
            # What the zip says it unpacks to, then what it does: a bomb stops at the limit.
            if entry.file_size > limit:
                raise NotReadable("too_large", entry.file_size)
            with archive.open(entry) as unpacked:
                content = unpacked.read(limit + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError):
        raise NotReadable("bad_zip") from None
    if len(content) > limit:
        raise NotReadable("too_large", len(content))
    return content


def translated(document: Any, limits: Limits, wording: Wording) -> Translated | None:
    """The conversations of ChatGPT's or Open WebUI's export, the newest that one import
    holds; None for any other document (the caller says what is wrong with it)."""
    items = document if isinstance(document, list) else [document]
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    if all(isinstance(item.get("mapping"), dict) for item in items):
        conversations = [_chatgpt(item, wording) for item in items]
    elif all(isinstance(item.get("chat"), dict) for item in items):
        conversations = [_open_webui(item, wording) for item in items]
    elif all(isinstance(item.get("history"), dict) for item in items):
        # One chat as Open WebUI keeps it (its `chat` alone).
        conversations = [
            _open_webui({"chat": item, "title": item.get("title")}, wording) for item in items
        ]
    else:
        return None
    # One with nothing to show here (a system prompt alone) is no conversation.
    conversations = [c for c in conversations if c["messages"]]
    conversations.sort(key=lambda c: c.pop("_moment"), reverse=True)
    taken: list[dict[str, Any]] = []
    total = 0
    for conversation in conversations:
        count = len(conversation["messages"])
        if count > limits.per_conversation:
            continue
        if len(taken) == limits.conversations or total + count > limits.messages:
            break
        taken.append(conversation)
        total += count
    return Translated(taken, left_out=len(conversations) - len(taken))


def _moment(seconds: Any) -> str | None:
    """An epoch time (seconds, or milliseconds as some Open WebUI versions write) as ISO 8601."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    if seconds > 1e11:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


class _Tree:
    """Messages gathered from a foreign tree, parents before their children."""

    def __init__(self, wording: Wording) -> None:
        self.messages: list[dict[str, Any]] = []
        self.wording = wording

    def add(
        self, parent: int | None, role: Any, content: str, *, at: Any, model: Any, usage: Any = None
    ) -> int | None:
        """The message's place, which its children follow: its parent's when it has no place
        here (not a question or an answer; a question with no text)."""
        if role not in ("user", "assistant") or (role == "user" and not content.strip()):
            return parent
        fields = {"created_at": _moment(at)}
        if role == "assistant":
            fields |= {"model": _text(model, 100), "usage": _usage(usage)}
        if role == "assistant" and parent is not None:
            above = self.messages[parent]
            if above["role"] == "assistant" and above.pop("_open", False):
                # One answer the source wrote in parts (around a tool's call): one message.
                above["content"] = "\n\n".join(filter(None, (above["content"], content)))
                above["_open"] = True
                return parent
        self.messages.append(
            {"role": role, "content": content, "parent": parent, "_open": role == "assistant"}
            | {name: value for name, value in fields.items() if value is not None}
        )
        return len(self.messages) - 1

    def walk(self, roots: list[Any], children: Any, visit: Any, shown: set[Any]) -> None:
        """Depth first from `roots`, each node once; `visit(node, parent)` returns the index of
        the message its children follow. The messages on the branch shown are chosen last."""
        seen: set[Any] = set()
        stack = [(node, None) for node in reversed(roots)]
        while stack:
            node, parent = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            index = visit(node, parent)
            if index is not None and node in shown:
                self.messages[index]["_shown"] = True
            under = [child for child in children(node) if child not in seen]
            stack.extend((child, index) for child in reversed(under))
            if index is not None and len(under) != 1:
                # An answer that forks, or ends, takes no more parts.
                self.messages[index]["_open"] = False

    def done(self, created: str | None, latest: str | None) -> list[dict[str, Any]]:
        for message in self.messages:
            message.pop("_open", None)
            if len(message["content"]) > MAX_CHARS:
                # A document pasted whole there: its start here, said so, not the import refused.
                cut = self.wording.cut
                message["content"] = message["content"][: MAX_CHARS - len(cut) - 2] + "\n\n" + cut
            parent = message["parent"]
            # A message with no time has its parent's, or the conversation's.
            message.setdefault(
                "created_at",
                self.messages[parent].get("created_at") if parent is not None else created,
            )
            # The branch shown is chosen after any other version, as it was there.
            shown = message.pop("_shown", False)
            message["selected_at"] = (latest if shown else None) or message["created_at"]
        return self.messages


def _branch(current: Any, parent_of: Any) -> set[Any]:
    shown: set[Any] = set()
    while current is not None and current not in shown:
        shown.add(current)
        current = parent_of(current)
    return shown


def _latest(*moments: str | None) -> str | None:
    known = [m for m in moments if m]
    return max(known) if known else None


# ChatGPT: `mapping` {id: {message, parent, children}}; a message's `author.role`,
# `content.content_type` and `parts`, `recipient` ("all" unless it calls a tool).
CHATGPT_TEXT = ("text", "multimodal_text")


def _chatgpt_content(message: dict[str, Any], wording: Wording) -> tuple[str, str] | None:
    role = (message.get("author") or {}).get("role")
    content = message.get("content") or {}
    metadata = message.get("metadata") or {}
    if (
        role not in ("user", "assistant")
        or not isinstance(content, dict)
        or content.get("content_type") not in CHATGPT_TEXT
        or message.get("recipient", "all") != "all"
        or metadata.get("is_visually_hidden_from_conversation")
    ):
        return None
    parts = content.get("parts") or []
    texts = []
    for part in parts if isinstance(parts, list) else []:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and "image" in str(part.get("content_type", "")):
            texts.append(wording.image)
    return role, "\n".join(t for t in texts if t)


def _chatgpt(item: dict[str, Any], wording: Wording) -> dict[str, Any]:
    mapping: dict[str, Any] = item["mapping"]
    nodes = {key: node for key, node in mapping.items() if isinstance(node, dict)}

    def parent_of(key: Any) -> Any:
        return nodes.get(key, {}).get("parent")

    def children(key: Any) -> list[Any]:
        under = nodes.get(key, {}).get("children")
        return (
            [c for c in under if isinstance(c, str) and c in nodes]
            if isinstance(under, list)
            else []
        )

    tree = _Tree(wording)

    def visit(key: Any, parent: int | None) -> int | None:
        message = nodes[key].get("message")
        found = _chatgpt_content(message, wording) if isinstance(message, dict) else None
        if found is None:
            return parent
        role, text = found
        model = (message.get("metadata") or {}).get("model_slug")
        return tree.add(parent, role, text, at=message.get("create_time"), model=model)

    roots = [key for key, node in nodes.items() if node.get("parent") not in nodes]
    created, updated = _moment(item.get("create_time")), _moment(item.get("update_time"))
    tree.walk(roots, children, visit, _branch(item.get("current_node"), parent_of))
    latest = _latest(updated, created, *(m.get("created_at") for m in tree.messages))
    messages = tree.done(created, latest)
    return {
        "title": _text(item.get("title"), 200),
        "created_at": created,
        "updated_at": updated,
        "messages": messages,
        "_moment": updated or created or "",
    }


# Open WebUI: `chat.history.messages` {id: {parentId, childrenIds, role, content, timestamp,
# model}} and `chat.history.currentId`; older exports only a list, `chat.messages`.


def _usage(value: Any) -> dict[str, int] | None:
    """The tokens a reply used, as Open WebUI recorded them from the model's server."""
    if not isinstance(value, dict):
        return None
    tokens = {key: value.get(key) for key in ("prompt_tokens", "completion_tokens")}
    if all(type(count) is int and count >= 0 for count in tokens.values()):
        return tokens
    return None


def _open_webui(item: dict[str, Any], wording: Wording) -> dict[str, Any]:
    chat: dict[str, Any] = item["chat"]
    history = chat.get("history") if isinstance(chat.get("history"), dict) else {}
    found = history.get("messages")
    nodes: dict[Any, dict[str, Any]]
    if isinstance(found, dict) and found:
        nodes = {key: node for key, node in found.items() if isinstance(node, dict)}
        current = history.get("currentId")
    else:  # one path: each message follows the one before
        listed = chat.get("messages") if isinstance(chat.get("messages"), list) else []
        nodes = {}
        for index, node in enumerate(m for m in listed if isinstance(m, dict)):
            nodes[index] = {**node, "parentId": index - 1 if index else None}
        current = len(nodes) - 1 if nodes else None
    children_of: dict[Any, list[Any]] = {}
    for key, node in nodes.items():
        children_of.setdefault(node.get("parentId"), []).append(key)

    def children(key: Any) -> list[Any]:
        return children_of.get(key, [])

    def parent_of(key: Any) -> Any:
        return nodes.get(key, {}).get("parentId")

    tree = _Tree(wording)

    def visit(key: Any, parent: int | None) -> int | None:
        node = nodes[key]
        content = node.get("content")
        if not isinstance(content, str):
            return parent
        return tree.add(
            parent,
            node.get("role"),
            content,
            at=node.get("timestamp"),
            model=node.get("model"),
            usage=node.get("usage"),
        )

    roots = [key for key, node in nodes.items() if node.get("parentId") not in nodes]
    # Its `timestamp` is in milliseconds (`_moment` reads both).
    created = _moment(item.get("created_at")) or _moment(chat.get("timestamp"))
    updated = _moment(item.get("updated_at"))
    tree.walk(roots, children, visit, _branch(current, parent_of))
    latest = _latest(updated, created, *(m.get("created_at") for m in tree.messages))
    messages = tree.done(created, latest)
    return {
        "title": _text(item.get("title") or chat.get("title"), 200),
        "created_at": created,
        "pinned": item.get("pinned") is True,
        "updated_at": updated,
        "messages": messages,
        "_moment": updated or created or "",
    }


if __name__ == "__main__":
    for line in _child(json.loads(sys.argv[1])):
        sys.stdout.write(line + "\n")
