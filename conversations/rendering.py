"""Markdown -> safe HTML, for replies shown on a page.

The model writes markdown; nothing it writes may run in the browser (OWASP LLM05). Three
layers make sure of it:

1. markdown-it with raw HTML off: `<img onerror=...>` in a reply is text, not a tag.
2. nh3 (ammonia) on the result: only the tags and attributes a reply needs survive, and links
   keep only http, https and mailto URLs, with `rel="noopener noreferrer"`.
3. The Content-Security-Policy (`chatsite/middleware.py`): no inline script runs even if a
   tag slipped through.

Code blocks are highlighted with Pygments, but with highlight.js's class names, so the page's
one stylesheet colours a reply the same whether it was rendered here (history) or in the
browser (`static/js/render.js`, while it streams).

An image (`![a cat](https://…/cat.png)`) becomes a link to it named by its alt text: the page
never loads anything from another host. LaTeX math is marked here (`conversations.texmath`)
and drawn by KaTeX in the browser.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from pygments.lexers import get_lexer_by_name
from pygments.token import (
    Comment,
    Keyword,
    Literal,
    Name,
    Number,
    Operator,
    String,
    _TokenType,
)
from pygments.util import ClassNotFound

from conversations.texmath import texmath_plugin

ALLOWED_TAGS = {
    "a",
    "blockquote",
    "br",
    "code",
    "del",
    "div",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "class"},
    "code": {"class"},
    "div": {"class"},
    "span": {"class"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Longest code block worth highlighting; past this it is shown plain (highlighting is slow).
HIGHLIGHT_LIMIT = 50_000

# Pygments token types -> highlight.js scopes, most specific first.
_SCOPES: list[tuple[_TokenType, str]] = [
    (Comment, "hljs-comment"),
    (Keyword.Constant, "hljs-literal"),
    (Keyword.Type, "hljs-type"),
    (Keyword, "hljs-keyword"),
    (Name.Builtin, "hljs-built_in"),
    (Name.Function, "hljs-title function_"),
    (Name.Class, "hljs-title class_"),
    (Name.Decorator, "hljs-meta"),
    (Name.Tag, "hljs-name"),
    (Name.Attribute, "hljs-attr"),
    (Name.Variable, "hljs-variable"),
    (String.Escape, "hljs-char escape_"),
    (String.Interpol, "hljs-subst"),
    (String, "hljs-string"),
    (Number, "hljs-number"),
    (Literal, "hljs-literal"),
    (Operator.Word, "hljs-keyword"),
]


def _scope(token_type: _TokenType) -> str:
    for parent, scope in _SCOPES:
        if token_type in parent:
            return scope
    return ""


def highlight_code(code: str, language: str) -> str:
    """Highlighted HTML for a code block's inner text, or the escaped text."""
    if not language or len(code) > HIGHLIGHT_LIMIT:
        return escape(code)
    try:
        lexer = get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return escape(code)
    # Neighbouring tokens of one scope become one span ("a string" is one, not three).
    runs: list[tuple[str, str]] = []
    for token_type, value in lexer.get_tokens(code):
        scope = _scope(token_type) if value.strip() else ""
        if runs and runs[-1][0] == scope:
            runs[-1] = (scope, runs[-1][1] + value)
        else:
            runs.append((scope, value))
    return "".join(
        f'<span class="{scope}">{escape(value)}</span>' if scope else escape(value)
        for scope, value in runs
    )


def _highlight(code: str, language: str, _attrs: Any) -> str:
    return highlight_code(code, language.split()[0] if language else "")


def _image_as_link(
    self: Any, tokens: list[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """An image as a link to it, named by its alt text; one not from https as its alt text.

    Loading it would tell another host who reads the reply (and the CSP forbids it anyway).
    """
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children, options, env)
    src = str(token.attrGet("src") or "")
    if not src.lower().startswith("https://"):
        return escapeHtml(alt)
    title = token.attrGet("title")
    title_attr = f' title="{escapeHtml(str(title))}"' if title else ""
    return (
        f'<a href="{escapeHtml(src)}" class="image-link"{title_attr}>{escapeHtml(alt or src)}</a>'
    )


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "highlight": _highlight})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("image", _image_as_link)
    md.use(texmath_plugin)
    return md


_md = _markdown()


def sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )


def render_markdown(text: str) -> str:
    """Safe HTML for a reply's markdown."""
    return sanitize(_md.render(text or ""))


def pretty_json(text: str) -> str | None:
    """The text as indented JSON, or None when it is not JSON."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return json.dumps(value, indent=2, ensure_ascii=False)


def is_json_mode(parameters: dict[str, Any] | None) -> bool:
    return (parameters or {}).get("response_format") == "json_object"


def json_check(content: str, parameters: dict[str, Any] | None, status: str) -> str:
    """ "valid" or "invalid" for a JSON-mode reply that has ended, "" otherwise.

    Checked once the reply ends (a streaming one is unfinished JSON by nature); an ended reply
    with no text at all has nothing to check.
    """
    if not is_json_mode(parameters) or status == "streaming" or not content.strip():
        return ""
    return "valid" if pretty_json(content) is not None else "invalid"


def render_reply(content: str, parameters: dict[str, Any] | None = None) -> str:
    """Safe HTML for a reply: JSON-mode answers pretty-printed, others as markdown.

    A JSON-mode answer that does not parse is shown exactly as the model wrote it, as plain
    text: as markdown a broken object would turn into a garbled paragraph.
    """
    if is_json_mode(parameters):
        pretty = pretty_json(content)
        if pretty is not None:
            code = highlight_code(pretty, "json")
            return sanitize(f'<pre><code class="language-json">{code}</code></pre>')
        if content.strip():
            return sanitize(f'<pre><code class="json-raw">{escape(content)}</code></pre>')
    return render_markdown(content)
