"""LaTeX math in a reply's markdown: found here, drawn by KaTeX in the browser.

A markdown-it plugin that marks math so markdown leaves it alone (`$a_1 * b_1$` is not
emphasis, `\\(` is not an escaped parenthesis) and wraps it in an element holding the TeX as
text: `<span class="math-inline">`, or `math-display` (a `<div>` for a block of its own, a
`<span>` inside a paragraph). The browser turns those elements into KaTeX (`static/js/math.js`);
`static/js/math.js` also holds the same plugin for markdown-it in the browser, with the same
rules, so a reply streamed and the same reply reloaded look the same.

The delimiters are those models write, and ChatGPT and Open WebUI render:

- `\\(...\\)` inline and `\\[...\\]` displayed;
- `$$...$$` displayed;
- `$...$` inline, by markdown-it-texmath's rules so that prices stay text: the opening `$` has
  no backslash or digit before it and no space after it, the first unescaped `$` after it
  closes, and only when it has no space before it and no digit after it. "$5 and $10" is text.

Code spans and code blocks are parsed before this rule reaches them, so they stay untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _dollar(src: str, pos: int, end: int) -> tuple[str, int] | None:
    """`$...$` at `pos`: the TeX and the position after the closing `$`, or None."""
    if pos > 0 and (src[pos - 1] == "\\" or _is_digit(src[pos - 1])):
        return None
    if pos + 1 >= end or src[pos + 1].isspace():
        return None
    close = pos + 1
    while True:
        close = src.find("$", close, end)
        if close == -1:
            return None
        if src[close - 1] != "\\":
            break
        close += 1
    tex = src[pos + 1 : close]
    if "\n" in tex or src[close - 1].isspace():
        return None
    if close + 1 < end and _is_digit(src[close + 1]):
        return None
    return tex, close + 1


def _double_dollar(src: str, pos: int, end: int) -> tuple[str, int] | None:
    """`$$...$$` inside a paragraph (shown displayed)."""
    if pos > 0 and (src[pos - 1] == "\\" or _is_digit(src[pos - 1])):
        return None
    close = src.find("$$", pos + 2, end)
    if close == -1:
        return None
    tex = src[pos + 2 : close]
    if "$" in tex or not tex.strip() or tex.endswith("\\"):
        return None
    if close + 2 < end and _is_digit(src[close + 2]):
        return None
    return tex, close + 2


def _bracketed(src: str, pos: int, end: int, closer: str) -> tuple[str, int] | None:
    """`\\(...\\)` (on one line) or `\\[...\\]`."""
    close = src.find(closer, pos + 2, end)
    if close == -1:
        return None
    tex = src[pos + 2 : close]
    if not tex.strip() or (closer == "\\)" and "\n" in tex):
        return None
    return tex, close + 2


def math_inline(state: StateInline, silent: bool) -> bool:
    src, pos, end = state.src, state.pos, state.posMax
    opener = src[pos : pos + 2]
    if opener == "\\(":
        found, display = _bracketed(src, pos, end, "\\)"), False
    elif opener == "\\[":
        found, display = _bracketed(src, pos, end, "\\]"), True
    elif opener == "$$":
        found, display = _double_dollar(src, pos, end), True
    elif src[pos] == "$":
        found, display = _dollar(src, pos, end), False
    else:
        return False
    if found is None:
        return False
    tex, after = found
    if not silent:
        token = state.push("math_inline", "span", 0)
        token.content = tex.strip()
        token.markup = opener if display or opener == "\\(" else "$"
        token.meta = {"display": display}
    state.pos = after
    return True


def math_block(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """`$$` or `\\[` opening a line, closed at the end of that line or a later one (no blank
    line between)."""
    if state.sCount[start_line] - state.blkIndent >= 4:
        return False
    begin = state.bMarks[start_line] + state.tShift[start_line]
    opener = state.src[begin : begin + 2]
    if opener == "$$":
        closer = "$$"
    elif opener == "\\[":
        closer = "\\]"
    else:
        return False
    lines: list[str] = []
    line = start_line
    start = begin + 2
    while True:
        text = state.src[start : state.eMarks[line]]
        if line > start_line and not text.strip():
            return False
        close = text.find(closer)
        if close != -1:
            if text[close + 2 :].strip():
                return False
            lines.append(text[:close])
            break
        lines.append(text)
        line += 1
        if line >= end_line:
            return False
        start = state.bMarks[line] + state.tShift[line]
    tex = "\n".join(lines)
    if not tex.strip() or (closer == "$$" and "$" in tex):
        return False
    if silent:
        return True
    state.line = line + 1
    token = state.push("math_block", "div", 0)
    token.block = True
    token.content = tex.strip()
    token.markup = opener
    token.map = [start_line, state.line]
    return True


def _render_inline(
    self: object, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    kind = "math-display" if token.meta.get("display") else "math-inline"
    return f'<span class="{kind}">{escapeHtml(token.content)}</span>'


def _render_block(
    self: object, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return f'<div class="math-display">{escapeHtml(tokens[idx].content)}</div>\n'


def texmath_plugin(md: MarkdownIt) -> None:
    # Before `escape`, which would turn `\(` into a plain `(`.
    md.inline.ruler.before("escape", "math_inline", math_inline)
    md.block.ruler.before(
        "fence",
        "math_block",
        math_block,
        {"alt": ["paragraph", "reference", "blockquote", "list"]},
    )
    md.add_render_rule("math_inline", _render_inline)
    md.add_render_rule("math_block", _render_block)
