"""A markdown image in a reply is a link to it, named by its alt text: the page loads nothing
from another host."""

from __future__ import annotations

from conversations.rendering import render_markdown


def test_an_https_image_is_a_link_named_by_its_alt_text():
    html = render_markdown("See ![a cat](https://example.com/cat.png) here")
    assert "<img" not in html
    assert '<a href="https://example.com/cat.png" class="image-link"' in html
    assert ">a cat</a>" in html
    assert "!a cat" not in html and "!" not in html


def test_the_link_opens_safely():
    html = render_markdown("![a cat](https://example.com/cat.png)")
    assert 'rel="noopener noreferrer"' in html
    assert 'target="_blank"' in html


def test_an_image_without_alt_text_is_named_by_its_address():
    html = render_markdown("![](https://example.com/cat.png)")
    assert ">https://example.com/cat.png</a>" in html


def test_an_image_from_anywhere_but_https_is_only_its_alt_text():
    for source in ("http://example.com/cat.png", "data:image/png;base64,AAAA", "cat.png"):
        html = render_markdown(f"![a cat]({source})")
        assert html == "<p>a cat</p>\n", source


def test_markdown_in_the_alt_text_is_text():
    html = render_markdown("![a *big* <cat>](https://example.com/cat.png)")
    assert ">a big &lt;cat&gt;</a>" in html
