"""Token confidence: what a reply's stored logprobs say about how sure the model was.

A reply made with token confidence on keeps, for every token, its log-probability and the
alternatives the model weighed (`Message.logprobs`). This module turns them into what the
page shows: a level per token for the heatmap, and a summary per reply (mean and lowest
probability, the least certain tokens). `static/js/confidence.js` computes the same for a
reply that has just ended; the two agree (a test renders both).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# How many of the least certain tokens a summary names.
LEAST_CERTAIN = 5


def probability(logprob: Any) -> float:
    """A log-probability as a probability in [0, 1]; anything unreadable counts as 0."""
    try:
        value = math.exp(float(logprob))
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return min(max(value, 0.0), 1.0)


def percent(p: float) -> int:
    """Whole percent, halves rounded up (as JavaScript's Math.round, so both pages agree)."""
    return math.floor(p * 100 + 0.5)


def level(p: float) -> int:
    """1 (doubtful) to 4 (sure): the heatmap's colour for a token of probability `p`."""
    if p >= 0.9:
        return 4
    if p >= 0.6:
        return 3
    if p >= 0.3:
        return 2
    return 1


def shown(token: str) -> str:
    """A token as a person can read it in a tooltip: line breaks and edge spaces visible."""
    text = token.replace("\n", "↵").replace("\t", "⇥")
    stripped = text.strip(" ")
    if not stripped:
        return "␣" * len(text)
    lead = len(text) - len(text.lstrip(" "))
    trail = len(text) - len(text.rstrip(" "))
    return "␣" * lead + stripped + "␣" * trail


@dataclass(frozen=True)
class Token:
    index: int
    text: str
    probability: float
    alternatives: list[tuple[str, float]] = field(default_factory=list)

    @property
    def level(self) -> int:
        return level(self.probability)

    @property
    def percent(self) -> int:
        return percent(self.probability)


@dataclass(frozen=True)
class Summary:
    count: int
    mean: float
    lowest: Token
    least_certain: list[Token]

    @property
    def mean_percent(self) -> int:
        return percent(self.mean)


def tokens_of(logprobs: Iterable[dict[str, Any]] | None) -> list[Token]:
    tokens = []
    for index, entry in enumerate(logprobs or []):
        if not isinstance(entry, dict):
            continue
        alternatives = [
            (str(alt.get("token", "")), probability(alt.get("logprob")))
            for alt in entry.get("top_logprobs") or []
            if isinstance(alt, dict)
        ]
        tokens.append(
            Token(
                index, str(entry.get("token", "")), probability(entry.get("logprob")), alternatives
            )
        )
    return tokens


def summarize(logprobs: Iterable[dict[str, Any]] | None) -> Summary | None:
    """Mean and lowest confidence and the least certain tokens; None without logprobs.

    The least certain tokens leave out whitespace: a doubtful line break tells a reader nothing.
    """
    tokens = tokens_of(logprobs)
    if not tokens:
        return None
    mean = sum(t.probability for t in tokens) / len(tokens)
    lowest = min(tokens, key=lambda t: (t.probability, t.index))
    worded = [t for t in tokens if t.text.strip()]
    least = sorted(worded, key=lambda t: (t.probability, t.index))[:LEAST_CERTAIN]
    return Summary(len(tokens), mean, lowest, least)
