"""LaTeX in a reply is marked as math (drawn by KaTeX in the browser), with the delimiters
models write; prices and code stay as written."""

from __future__ import annotations

import pytest

from conversations.rendering import render_markdown


def inline(tex: str) -> str:
    return f'<span class="math-inline">{tex}</span>'


def display(tex: str) -> str:
    return f'<span class="math-display">{tex}</span>'


@pytest.mark.parametrize(
    ("markdown", "html"),
    [
        ("Euler: $e^{i\\pi} + 1 = 0$.", "<p>Euler: " + inline("e^{i\\pi} + 1 = 0") + ".</p>\n"),
        ("\\(a_1 * b_1\\) stays", f"<p>{inline('a_1 * b_1')} stays</p>\n"),
        ("so \\[x^2\\] and $$y^2$$", f"<p>so {display('x^2')} and {display('y^2')}</p>\n"),
        ("$a < b$", f"<p>{inline('a &lt; b')}</p>\n"),
    ],
)
def test_inline_math_is_marked(markdown, html):
    assert render_markdown(markdown) == html


def test_markdown_inside_math_is_left_alone():
    html = render_markdown("$a_1 * b_1 * c_1$ and \\(x_1 \\_ y_1\\)")
    assert "<em>" not in html
    assert inline("a_1 * b_1 * c_1") in html
    assert inline("x_1 \\_ y_1") in html


@pytest.mark.parametrize(
    "markdown",
    [
        "$$\n\\frac{a}{b}\n$$",
        "\\[\n\\frac{a}{b}\n\\]",
        "$$\\frac{a}{b}$$",
        "  \\[ \\frac{a}{b} \\]",
    ],
)
def test_a_block_of_math_is_displayed(markdown):
    assert render_markdown(markdown) == '<div class="math-display">\\frac{a}{b}</div>\n'


def test_a_block_of_math_may_follow_a_line_of_text():
    html = render_markdown("The formula:\n\\[\nE = mc^2\n\\]\nholds.")
    assert html == (
        '<p>The formula:</p>\n<div class="math-display">E = mc^2</div>\n<p>holds.</p>\n'
    )


@pytest.mark.parametrize(
    "text",
    [
        "It costs $5 and $10.",
        "Between $5-$10 a month",
        "$5, $10 or $20",
        "Pay $ 5 then $ 6",
        "The $HOME and $PATH variables",
        "Escaped \\$x\\$ dollars",
        "1$x$ after a digit",
    ],
)
def test_dollars_in_ordinary_text_stay_text(text):
    html = render_markdown(text)
    assert "math" not in html
    assert "$" in html


def test_an_unclosed_block_is_text():
    html = render_markdown("$$\nx^2\n\nmore")
    assert "math-display" not in html


def test_code_is_untouched():
    html = render_markdown("`$x$` and\n\n```\n$$y$$ \\(z\\)\n```\n\n    $w$")
    assert "math" not in html
    assert "<code>$x$</code>" in html
    assert "$$y$$ \\(z\\)" in html


def test_math_can_run_nothing():
    html = render_markdown("$<img src=x onerror=alert(1)>$ \\(</span><script>alert(2)</script>\\)")
    assert "<img" not in html and "<script" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
