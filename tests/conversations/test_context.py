"""The context window: the system prompt and the newest messages that fit the budget."""

from __future__ import annotations

import pytest

from conversations.context import (
    HistoryItem,
    count_tokens,
    estimate_tokens,
    select_context,
)


def history(count: int, words: int = 50) -> list[HistoryItem]:
    roles = ["user", "assistant"]
    return [
        HistoryItem(id=i + 1, role=roles[i % 2], content=f"message {i + 1} " + "word " * words)
        for i in range(count)
    ]


def test_everything_is_sent_when_it_fits():
    context = select_context(system_prompt="Be kind.", history=history(4), model="m", budget=10_000)
    assert context.messages[0] == {"role": "system", "content": "Be kind."}
    assert len(context.messages) == 5
    assert context.context_from_id == 1


def test_the_oldest_messages_fall_out_first():
    items = history(40)
    context = select_context(system_prompt="Be kind.", history=items, model="m", budget=1_000)
    sent = context.messages[1:]
    assert 1 < len(sent) < 40
    assert sent[-1]["content"] == items[-1].content
    assert context.context_from_id == items[-len(sent)].id
    assert context.prompt_tokens <= 1_000


def test_the_system_prompt_and_the_new_message_are_kept_even_over_budget():
    items = history(3, words=2_000)
    context = select_context(system_prompt="Be kind.", history=items, model="m", budget=10)
    assert [m["role"] for m in context.messages] == ["system", "user"]
    assert context.messages[1]["content"] == items[-1].content
    assert context.context_from_id == items[-1].id


def test_the_budget_follows_the_model(settings):
    settings.CHAT_CONTEXT_TOKENS = 100_000
    settings.CHAT_CONTEXT_TOKENS_PER_MODEL = {"small-model": 500}
    items = history(40)
    small = select_context(system_prompt="", history=items, model="small-model")
    large = select_context(system_prompt="", history=items, model="gpt-4o-mini")
    assert len(small.messages) < len(large.messages) == 40


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [("hello world, how are you today?", 6, 10), ("안녕하세요 반갑습니다", 10, 11), ("", 0, 0)],
)
def test_the_estimate_counts_korean_by_syllable_and_latin_by_four_characters(text, low, high):
    assert low <= estimate_tokens(text) <= high


def test_counting_never_needs_the_network(monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty cache: no encodings
    from conversations import context

    context._cached_encoding.cache_clear()
    try:
        assert count_tokens("some text here", "gpt-4o-mini") == estimate_tokens("some text here")
    finally:
        context._cached_encoding.cache_clear()
