"""The child that reads an import hands its answer over in pieces of a bounded number of values
(`foreign.pieces`), which the server puts together a piece at a time (`foreign.assembled`),
letting its other threads run between two: no single `json.loads` of a file's worth of small
objects holds Python's lock in the server."""

from __future__ import annotations

import json

import pytest

from conversations import foreign

VALUES = [
    None,
    "text",
    [],
    {},
    [1, 2, 3],
    {"a": 1, "b": [1, 2]},
    list(range(50)),
    {f"key {i}": {"n": i, "list": [i, i + 1]} for i in range(30)},
    [[[[]]], [[list(range(12))]], {"deep": {"deeper": list(range(20))}}],
    {"format": "x", "conversations": [{"messages": [{"content": "안녕 🎉"}] * 15}], "z": []},
    ["\ud800 half a pair", "\x00", 1.5, -(2**63), True, False],
]


def weight(value) -> int:
    """Every value `value` holds, itself and a dict's keys included."""
    if isinstance(value, dict):
        return 1 + len(value) + sum(weight(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(weight(v) for v in value)
    return 1


@pytest.mark.parametrize("limit", [1, 2, 5, 10, 1000])
@pytest.mark.parametrize("value", VALUES)
def test_what_goes_in_pieces_comes_out_the_same(value, limit):
    lines = list(foreign.pieces(value, limit))
    calls = []
    back = foreign.assembled(lines, lambda: calls.append(1))

    assert back == value
    assert json.dumps(back) == json.dumps(value)  # the keys' order too
    assert len(calls) == len(lines)


@pytest.mark.parametrize("limit", [3, 10, 100])
def test_no_piece_carries_more_than_the_limit(limit):
    value = {
        "conversations": [{"title": f"t{i}", "messages": [{}] * i} for i in range(40)],
        "padding": [[] for _ in range(500)],
        "wide": {str(i): i for i in range(300)},
    }
    lines = list(foreign.pieces(value, limit))

    # A large container's opening, then runs of what it holds, then its end: never the whole.
    assert len(lines) > weight(value) / limit
    for line in lines:
        kind, *rest = json.loads(line)
        carried = sum(weight(v) for v in rest[0]) if kind == "items" else 0
        if kind == "entries":
            carried = sum(1 + weight(v) for v in rest[0].values())
        if kind == "value":
            carried = weight(rest[0])
        assert carried <= limit, line[:200]


def test_a_small_value_is_one_piece():
    assert list(foreign.pieces({"a": [1, 2]}, 10)) == ['["value", {"a": [1, 2]}]']


@pytest.mark.parametrize(
    "lines",
    [
        ['["list", null]', '["items", [1]]'],  # never ended
        ['["kind of its own", 1]'],
        ["not json"],
    ],
)
def test_pieces_that_do_not_make_a_value_are_refused(lines):
    with pytest.raises(ValueError):
        foreign.assembled(lines, lambda: None)
