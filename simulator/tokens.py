"""Splitting an answer into tokens and giving each a believable log-probability.

Tokens are roughly word-sized (leading whitespace plus up to 12 non-space characters), so
streaming looks like a real model's and ``"".join(tokens) == content`` always holds.

Log-probabilities follow the temperature: a cool model is sure of every token (the emitted
token is the most likely alternative, p > 0.8); a warm one less so and sometimes picks the
runner-up; a hot one (>= 1.5) picks among many unlikely candidates. Alternatives are
sorted by probability, contain the emitted token and never sum above 1.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

from .conversation import contains_hangul

_TOKEN = re.compile(r"\s*\S{1,12}|\s+")
_LEADING_SPACE = re.compile(r"^\s*")

COOL_TEMPERATURE = 0.7
HOT_TEMPERATURE = 1.5
MAX_TOP_LOGPROBS = 20

_ALTERNATIVES_EN = (
    "the", "a", "and", "to", "of", "it", "this", "that", "is", "in", "for", "you", "we",
    "can", "with", "as", "on", "be", "then", "so", "but", "or", "not", "just", "more",
    "first", "next", "also", "here", "there", "when",
)  # fmt: skip
_ALTERNATIVES_KO = (
    "그리고", "또한", "먼저", "다음", "이", "그", "저", "것", "수", "있습니다", "합니다",
    "하세요", "좋은", "질문", "답변", "방법", "단계", "확인", "예", "다시", "더", "잘",
    "바로", "이제", "모두", "각", "한", "두", "세", "네",
)  # fmt: skip

Alternative = tuple[str, float]


@dataclass(frozen=True)
class Token:
    """One emitted token: its text, log-probability and the top alternatives at its position.

    ``top_logprobs`` holds exactly the requested number of ``(token, logprob)`` pairs,
    most likely first, and includes the emitted token whenever it is non-empty.
    """

    text: str
    logprob: float
    top_logprobs: tuple[Alternative, ...] = ()


def tokenize(text: str) -> list[str]:
    """Word-sized pieces whose concatenation is exactly ``text``."""
    return _TOKEN.findall(text)


def _confidence(temperature: float, rng: random.Random, width: int) -> tuple[int, float]:
    """(rank of the emitted token among the alternatives, probability of the top one)."""
    if temperature <= COOL_TEMPERATURE:
        return 0, rng.uniform(0.82, 0.995)
    if temperature < HOT_TEMPERATURE:
        rank = 0 if rng.random() < 0.85 else 1
        return min(rank, width - 1), rng.uniform(0.45, 0.95)
    return rng.randrange(min(width, 4)), rng.uniform(0.08, 0.45)


def _distribution(top: float, width: int, rng: random.Random) -> list[float]:
    """``width`` descending probabilities starting at ``top`` whose sum stays below 1."""
    probabilities = [top]
    for _ in range(width - 1):
        probabilities.append(probabilities[-1] * rng.uniform(0.3, 0.9))
    rest = sum(probabilities[1:])
    budget = 0.999 - top  # top never exceeds 0.995, so this stays positive
    if rest > budget:
        scale = budget / rest
        probabilities[1:] = [p * scale for p in probabilities[1:]]
    return probabilities


def _alternative_texts(emitted: str, count: int, rng: random.Random) -> list[str]:
    """``count`` distinct plausible tokens that differ from ``emitted``."""
    leading = _LEADING_SPACE.match(emitted)
    space = leading.group(0) if leading else ""
    pool = list(_ALTERNATIVES_KO if contains_hangul(emitted) else _ALTERNATIVES_EN)
    rng.shuffle(pool)
    candidates = [space + word for word in pool]
    candidates += [space + emitted.strip().capitalize(), space + emitted.strip().lower()]
    candidates += [f"{space}{word}s" for word in pool]
    seen = {emitted}
    chosen: list[str] = []
    for candidate in candidates:
        if candidate not in seen:
            seen.add(candidate)
            chosen.append(candidate)
        if len(chosen) == count:
            break
    return chosen


def _logprob(probability: float) -> float:
    return min(0.0, round(math.log(probability), 8))


def score(
    texts: list[str], temperature: float, top_logprobs: int, rng: random.Random
) -> list[Token]:
    """Attach log-probabilities (and ``top_logprobs`` alternatives) to token texts."""
    tokens: list[Token] = []
    width = max(top_logprobs, 1)
    for text in texts:
        rank, top = _confidence(temperature, rng, width)
        probabilities = _distribution(top, width, rng)
        emitted_logprob = _logprob(probabilities[rank])
        alternatives: tuple[Alternative, ...] = ()
        if top_logprobs:
            others = iter(_alternative_texts(text, top_logprobs - 1, rng))
            alternatives = tuple(
                (text if index == rank else next(others), _logprob(p))
                for index, p in enumerate(probabilities)
            )
        tokens.append(Token(text=text, logprob=emitted_logprob, top_logprobs=alternatives))
    return tokens
