"""The simulated answer's words: markdown or JSON that visibly reflects the conversation.

Every answer carries fixed "evidence" lines a test can look for (heading from the system
prompt, the last user message quoted verbatim, the message count, an earlier user
message), then prose picked from phrase pools by a random generator. The caller decides
how that generator is seeded, which is what makes cool temperatures repeatable and warm
ones vary. At hot temperatures the prose is garbled with made-up syllables and stray
unicode, more the hotter it gets; the evidence lines stay intact so context stays visible.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from .tokens import HOT_TEMPERATURE, tokenize


@dataclass(frozen=True)
class Language:
    """Every piece of fixed wording of one answer language."""

    default_heading: str
    asked: str
    context: str
    earlier: str
    images: str
    quoted: str
    openings: tuple[str, ...]
    points: tuple[str, ...]
    closings: tuple[str, ...]
    snippets: tuple[tuple[str, str], ...]


ENGLISH = Language(
    default_heading="Simulated assistant",
    asked="You asked: «{}»",
    context="Context: {} messages",
    earlier="Earlier you said: «{}»",
    images="Images: {} ({})",
    quoted="From «{}»: «{}»",
    openings=(
        "Here is a short, simulated answer that keeps the conversation moving.",
        "This reply comes from the offline simulator, so treat it as a placeholder.",
        "Let me walk through the question step by step.",
        "A quick overview first, then a few concrete suggestions.",
        "Good question; the short version is below.",
        "The simulator read your message and put together a compact answer.",
        "Happy to help with that, in a few plain steps.",
    ),
    points=(
        "Start with the simplest version that could possibly work.",
        "Keep each step small enough to test on its own.",
        "Write down what you expect before you measure it.",
        "Prefer clear names over clever tricks.",
        "Check the edge cases: empty input, very long input and unusual characters.",
        "Measure before optimising anything.",
        "Read the error message twice; it usually says what is wrong.",
        "Automate the boring parts so they happen every time.",
        "Keep the feedback loop short.",
        "Split the problem into parts you can reason about separately.",
        "Document the decision, not just the result.",
        "Ask what would make this fail, then test exactly that.",
        "Leave the code a little tidier than you found it.",
        "Compare two options side by side before choosing one.",
    ),
    closings=(
        "Let me know if you want more detail on any of these points.",
        "That should be enough to get started.",
        "Ask again with more context and the simulator will reflect it.",
        "Hope this helps; the simulator is happy to continue.",
    ),
    snippets=(
        (
            "python",
            'def answer(question: str) -> str:\n    """Return a simulated reply."""\n'
            '    return f"You asked: {question}"',
        ),
        (
            "javascript",
            "function answer(question) {\n  // Return a simulated reply.\n"
            "  return `You asked: ${question}`;\n}",
        ),
        ("bash", 'echo "simulated reply"\nls -la'),
    ),
)

KOREAN = Language(
    default_heading="시뮬레이션 도우미",
    asked="질문하신 내용: «{}»",
    context="대화 맥락: 메시지 {}개",
    earlier="앞서 하신 말씀: «{}»",
    images="이미지: {}개 ({})",
    quoted="«{}»에서: «{}»",
    openings=(
        "시뮬레이터가 준비한 짧은 답변입니다.",
        "질문을 차근차근 살펴보겠습니다.",
        "먼저 간단히 정리하고, 몇 가지 제안을 드리겠습니다.",
        "좋은 질문입니다. 핵심만 정리해 보겠습니다.",
        "오프라인 시뮬레이터의 답변이니 참고용으로 봐 주세요.",
    ),
    points=(
        "가장 단순한 방법부터 시작하세요.",
        "각 단계를 작게 나누어 따로 확인하세요.",
        "측정하기 전에 예상 결과를 먼저 적어 두세요.",
        "영리한 기교보다 명확한 이름을 선택하세요.",
        "빈 입력, 아주 긴 입력, 특수 문자 같은 경계 상황을 확인하세요.",
        "최적화하기 전에 먼저 측정하세요.",
        "오류 메시지를 두 번 읽어 보세요.",
        "반복 작업은 자동화하세요.",
        "피드백 주기를 짧게 유지하세요.",
        "결과뿐 아니라 결정의 이유도 기록하세요.",
        "문제를 따로 생각할 수 있는 부분으로 나누세요.",
    ),
    closings=(
        "더 자세한 설명이 필요하면 말씀해 주세요.",
        "이 정도면 시작하기에 충분할 것입니다.",
        "맥락을 더 알려 주시면 시뮬레이터가 반영하겠습니다.",
    ),
    snippets=(
        (
            "python",
            'def answer(question: str) -> str:\n    """시뮬레이션 답변을 돌려줍니다."""\n'
            '    return f"질문: {question}"',
        ),
    ),
)

_SYLLABLES = (
    "zor", "qua", "blim", "vex", "thra", "gral", "pff", "xu", "mord", "snak", "wib", "tlo",
    "krel", "yum", "frr", "dax", "ploo", "quib", "zent", "vorp",
)  # fmt: skip
_FRAGMENTS = (
    "ʘ", "ж", "ξ", "ø", "ɮ", "ʭ", "ю", "ᚠ", "ꙮ", "ҩ", "Ϟ", "ㅋ", "ꓘ", "ᘛ", "∆", "░", "¿", "ǂ",
)  # fmt: skip
_CODE_REQUEST = re.compile(r"\bcod(e|es|ing)\b|코드|\bpython\b|\bfunction\b|함수", re.IGNORECASE)


def _words_of(language: Language) -> set[str]:
    texts = [
        language.default_heading,
        language.asked,
        language.context,
        language.earlier,
        language.images,
        language.quoted,
        *language.openings,
        *language.points,
        *language.closings,
        *(f"{name} {code}" for name, code in language.snippets),
    ]
    return {word.lower() for text in texts for word in re.findall(r"\w+", text)}


LEXICON: frozenset[str] = frozenset(_words_of(ENGLISH) | _words_of(KOREAN))
"""Every word (``\\w+``, lower-cased) the templates can produce: the simulator's dictionary.

A word of an answer outside this set and outside the prompt is gibberish; tests use that to
measure how far a hot temperature drifted."""


def wants_code(question: str, digest: int) -> bool:
    """A fenced code block "now and then": for a third of prompts, or when code is asked for."""
    return digest % 3 == 0 or _CODE_REQUEST.search(question) is not None


@dataclass(frozen=True)
class Outline:
    """What the answer must show; built by the engine from the request."""

    persona: str | None
    question: str
    message_count: int
    earlier: str | None
    korean: bool
    with_code: bool
    # The last user message's images ("W×H") and files ((name, quote)).
    images: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = ()


class Garbler:
    """Turns prose into gibberish in proportion to how far the temperature is past 1.5."""

    def __init__(self, temperature: float, rng: random.Random, korean: bool) -> None:
        heat = (temperature - HOT_TEMPERATURE + 0.1) / 0.6
        self.intensity = max(0.0, min(1.0, heat)) if temperature >= HOT_TEMPERATURE else 0.0
        self.rng = rng
        self.korean = korean

    def nonsense_word(self) -> str:
        rng = self.rng
        if self.korean and rng.random() < 0.5:
            word = "".join(chr(rng.randrange(0xAC00, 0xD7A4)) for _ in range(rng.randint(2, 3)))
        else:
            word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
        if rng.random() < 0.3 + 0.5 * self.intensity:
            cut = rng.randrange(len(word) + 1)
            word = word[:cut] + rng.choice(_FRAGMENTS) + word[cut:]
        return word

    def __call__(self, sentence: str) -> str:
        if not self.intensity:
            return sentence
        replace = 0.15 + 0.6 * self.intensity
        insert = 0.3 * self.intensity
        words: list[str] = []
        for word in sentence.split(" "):
            words.append(self.nonsense_word() if self.rng.random() < replace else word)
            if self.rng.random() < insert:
                words.append(self.nonsense_word())
        return " ".join(words)


def _pick_points(language: Language, rng: random.Random, count: int) -> list[str]:
    points = list(language.points)
    rng.shuffle(points)
    return points[:count]


def _grow(
    render: Callable[[list[str]], str],
    points: list[str],
    more: Callable[[], str],
    min_tokens: int | None,
) -> str:
    """Render, adding points until the answer has at least ``min_tokens`` tokens."""
    text = render(points)
    if not min_tokens:
        return text
    while (have := len(tokenize(text))) < min_tokens:
        missing = min_tokens - have
        extra = []
        while missing > 0:
            point = more()
            extra.append(point)
            missing -= len(tokenize(point)) + 1
        points = points + extra
        text = render(points)
    return text


def compose_markdown(
    outline: Outline, rng: random.Random, temperature: float, min_tokens: int | None = None
) -> str:
    """The markdown answer: evidence lines, an opening, bullets, maybe code, a closing."""
    language = KOREAN if outline.korean else ENGLISH
    garble = Garbler(temperature, rng, outline.korean)
    evidence = [
        language.asked.format(outline.question),
        language.context.format(outline.message_count),
    ]
    if outline.earlier is not None:
        evidence.append(language.earlier.format(outline.earlier))
    if outline.images:
        evidence.append(language.images.format(len(outline.images), ", ".join(outline.images)))
    evidence.extend(language.quoted.format(name, quote) for name, quote in outline.files)
    opening = garble(rng.choice(language.openings))
    points = [garble(p) for p in _pick_points(language, rng, rng.randint(3, 4))]
    code = ""
    if outline.with_code:
        name, snippet = rng.choice(language.snippets)
        code = f"```{name}\n{garble(snippet)}\n```\n\n"
    closing = garble(rng.choice(language.closings))
    heading = outline.persona or language.default_heading

    def render(bullets: list[str]) -> str:
        items = "\n".join(f"- {point}" for point in bullets)
        lines = "\n".join(evidence)
        return f"## {heading}\n\n{lines}\n\n{opening}\n\n{items}\n\n{code}{closing}"

    return _grow(render, points, lambda: garble(rng.choice(language.points)), min_tokens)


def compose_json(
    outline: Outline, rng: random.Random, temperature: float, min_tokens: int | None = None
) -> str:
    """The JSON-mode answer: one object with the same evidence as the markdown answer."""
    language = KOREAN if outline.korean else ENGLISH
    garble = Garbler(temperature, rng, outline.korean)
    answer = garble(rng.choice(language.openings))
    points = [garble(p) for p in _pick_points(language, rng, rng.randint(3, 4))]
    closing = garble(rng.choice(language.closings))

    def render(items: list[str]) -> str:
        document = {
            "persona": outline.persona or language.default_heading,
            "question": outline.question,
            "context_messages": outline.message_count,
            "earlier": outline.earlier,
            **({"images": list(outline.images)} if outline.images else {}),
            **(
                {"files": [{"name": n, "quote": q} for n, q in outline.files]}
                if outline.files
                else {}
            ),
            "answer": answer,
            "points": items,
            "closing": closing,
        }
        return json.dumps(document, ensure_ascii=False, indent=2)

    return _grow(render, points, lambda: garble(rng.choice(language.points)), min_tokens)
