"""Replies are rendered from markdown to HTML that can run nothing."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from conversations.rendering import render_markdown, render_reply

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<a href="javascript:alert(1)">x</a>',
    "![x](javascript:alert(1))",
    '<svg onload="alert(1)"></svg>',
    "<iframe src=//evil></iframe>",
    "[x](vbscript:msgbox(1))",
]


class Elements(HTMLParser):
    """Every element of a piece of HTML with its attributes, as a browser would parse it."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


@pytest.mark.parametrize("markdown", HOSTILE)
def test_nothing_that_runs_survives(markdown):
    for tag, attrs in Elements(render_markdown(markdown)).found:
        assert tag not in {"script", "img", "iframe", "svg", "object", "embed"}
        for name, value in attrs.items():
            assert not name.startswith("on")
            if name in ("href", "src"):
                assert (value or "").startswith(("http:", "https:", "mailto:"))


def test_raw_html_is_shown_as_text():
    assert "&lt;img src=x onerror=alert(1)&gt;" in render_markdown("<img src=x onerror=alert(1)>")


def test_links_open_safely():
    html = render_markdown("[docs](https://example.com/a)")
    assert 'href="https://example.com/a"' in html
    assert 'rel="noopener noreferrer"' in html
    assert 'target="_blank"' in html


def test_images_stay_links():
    html = render_markdown("![a cat](https://example.com/cat.png)")
    assert "<img" not in html
    assert 'href="https://example.com/cat.png"' in html


def test_code_blocks_are_highlighted_with_the_browsers_class_names():
    html = render_markdown("```python\ndef greet():\n    return 'hi'\n```")
    assert '<code class="language-python">' in html
    assert '<span class="hljs-keyword">def</span>' in html
    assert '<span class="hljs-string">&#x27;hi&#x27;</span>' in html or "hljs-string" in html


def test_an_unknown_language_is_shown_plain():
    html = render_markdown("```nosuchlang\n<b>x</b>\n```")
    assert "&lt;b&gt;x&lt;/b&gt;" in html


def test_tables_render():
    html = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |")
    assert "<table>" in html and "<td>1</td>" in html


def test_json_mode_replies_are_pretty_printed():
    html = render_reply('{"a":[1,2]}', {"response_format": "json_object"})
    assert '<code class="language-json">' in html
    assert "\n  " in html


def test_json_mode_text_that_is_not_json_is_shown_as_written_not_as_markdown():
    # Broken JSON read as markdown turns into a garbled paragraph; the page marks it instead.
    html = render_reply("**not json**", {"response_format": "json_object"})
    assert html == '<pre><code class="json-raw">**not json**</code></pre>'
