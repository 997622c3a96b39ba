"""The engine on its own: pure, exact tokenisation, documented usage estimates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simulator import generate
from simulator.conversation import estimate_prompt_tokens, estimate_tokens
from simulator.tokens import tokenize

from .helpers import conversation


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "one",
        "  leading and trailing  \n",
        "a supercalifragilisticexpialidocious word",
        "줄바꿈\n\n그리고   공백\t탭",
        "```python\nprint('x')\n```\n",
    ],
)
def test_tokens_always_join_back_to_the_text(text: str):
    assert "".join(tokenize(text)) == text


def test_long_words_are_split_into_smaller_tokens():
    assert max(len(t) for t in tokenize("x" * 40)) <= 12


def test_prompt_tokens_follow_the_documented_estimate():
    assert estimate_tokens("abcdefgh") == 2
    assert estimate_tokens("안녕하세요") == 5
    messages = conversation("abcd", system="abcdefgh")
    assert estimate_prompt_tokens(messages) == 3 + (4 + 2) + (4 + 1)


@pytest.mark.parametrize("temperature", [0, 0.5, 1.0, 1.5, 2.0])
def test_every_generated_answer_is_exactly_its_tokens(temperature: float):
    request = {
        "messages": conversation("Hello", "Hi", "코드를 보여 주세요 [[sim:tokens=150]]"),
        "temperature": temperature,
        "logprobs": True,
        "top_logprobs": 20,
    }

    completion = generate(request)

    assert completion.completion_tokens >= 150
    assert completion.content == "".join(t.text for t in completion.tokens)
    assert all(len(t.top_logprobs) == 20 for t in completion.tokens)
    assert completion.finish_reason == "stop"


def test_the_simulator_package_imports_nothing_of_the_app():
    code = (
        "import sys, simulator, simulator.__main__;"
        "app = {'django', 'conversations', 'chatsite'};"
        "imported = sorted(m for m in sys.modules if m.split('.')[0] in app);"
        "assert not imported, imported"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
