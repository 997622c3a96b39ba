// LaTeX math in replies: the markdown-it plugin that marks it, with the same rules as
// conversations/texmath.py on the server (read that file for the delimiters and why "$5 and
// $10" stays text), and KaTeX, which draws what was marked.
//
// Both renderers turn math into an element holding the TeX as text
// (<span class="math-inline">, or math-display), which the sanitizers let through like any
// text. KaTeX draws into those elements afterwards, in the browser only:
// - KaTeX's HTML sizes and places its glyphs with `style` attributes. The page's CSP
//   (`style-src 'self'`, chatsite/middleware.py) refuses style attributes in markup, so KaTeX's
//   markup (renderToString) could neither be sanitized by DOMPurify/nh3 nor shown. katex.render()
//   builds the elements itself and sets each size through the CSSOM (`element.style`), which
//   the CSP allows: the policy stays as strict as it is.
// - Its input is only the TeX, read as text from an element the sanitizer already passed;
//   with `trust` off KaTeX makes no links, ids, classes or styles that a reply could choose.
// - Errors are ours to show (KaTeX's own error element carries a style attribute): the TeX
//   stays as written, marked `math-error`.
// KaTeX's MathML copy (for screen readers, not shown) puts a style attribute on the rare
// \pmb and \fcolorbox; the CSP drops that attribute, which changes nothing visible.
//
// KaTeX (590 kB, 130 kB compressed) is loaded the first time a page has math to show.

const SELECTOR = ":is(.math-inline, .math-display):not([data-drawn])";

const isDigit = (ch) => ch >= "0" && ch <= "9";
const isSpace = (ch) => /\s/.test(ch);

function dollar(src, pos, end) {
  if (pos > 0 && (src[pos - 1] === "\\" || isDigit(src[pos - 1]))) return null;
  if (pos + 1 >= end || isSpace(src[pos + 1])) return null;
  let close = pos + 1;
  for (;;) {
    close = src.indexOf("$", close);
    if (close === -1 || close >= end) return null;
    if (src[close - 1] !== "\\") break;
    close += 1;
  }
  const tex = src.slice(pos + 1, close);
  if (tex.includes("\n") || isSpace(src[close - 1])) return null;
  if (close + 1 < end && isDigit(src[close + 1])) return null;
  return [tex, close + 1];
}

function doubleDollar(src, pos, end) {
  if (pos > 0 && (src[pos - 1] === "\\" || isDigit(src[pos - 1]))) return null;
  const close = src.indexOf("$$", pos + 2);
  if (close === -1 || close + 2 > end) return null;
  const tex = src.slice(pos + 2, close);
  if (tex.includes("$") || !tex.trim() || tex.endsWith("\\")) return null;
  if (close + 2 < end && isDigit(src[close + 2])) return null;
  return [tex, close + 2];
}

function bracketed(src, pos, end, closer) {
  const close = src.indexOf(closer, pos + 2);
  if (close === -1 || close + 2 > end) return null;
  const tex = src.slice(pos + 2, close);
  if (!tex.trim() || (closer === "\\)" && tex.includes("\n"))) return null;
  return [tex, close + 2];
}

function mathInline(state, silent) {
  const { src, pos, posMax: end } = state;
  const opener = src.slice(pos, pos + 2);
  let found;
  let display;
  if (opener === "\\(") [found, display] = [bracketed(src, pos, end, "\\)"), false];
  else if (opener === "\\[") [found, display] = [bracketed(src, pos, end, "\\]"), true];
  else if (opener === "$$") [found, display] = [doubleDollar(src, pos, end), true];
  else if (src[pos] === "$") [found, display] = [dollar(src, pos, end), false];
  else return false;
  if (!found) return false;
  const [tex, after] = found;
  if (!silent) {
    const token = state.push("math_inline", "span", 0);
    token.content = tex.trim();
    token.markup = display || opener === "\\(" ? opener : "$";
    token.meta = { display };
  }
  state.pos = after;
  return true;
}

function mathBlock(state, startLine, endLine, silent) {
  if (state.sCount[startLine] - state.blkIndent >= 4) return false;
  const begin = state.bMarks[startLine] + state.tShift[startLine];
  const opener = state.src.slice(begin, begin + 2);
  let closer;
  if (opener === "$$") closer = "$$";
  else if (opener === "\\[") closer = "\\]";
  else return false;
  const lines = [];
  let line = startLine;
  let start = begin + 2;
  for (;;) {
    const text = state.src.slice(start, state.eMarks[line]);
    if (line > startLine && !text.trim()) return false;
    const close = text.indexOf(closer);
    if (close !== -1) {
      if (text.slice(close + 2).trim()) return false;
      lines.push(text.slice(0, close));
      break;
    }
    lines.push(text);
    line += 1;
    if (line >= endLine) return false;
    start = state.bMarks[line] + state.tShift[line];
  }
  const tex = lines.join("\n");
  if (!tex.trim() || (closer === "$$" && tex.includes("$"))) return false;
  if (silent) return true;
  state.line = line + 1;
  const token = state.push("math_block", "div", 0);
  token.block = true;
  token.content = tex.trim();
  token.markup = opener;
  token.map = [startLine, state.line];
  return true;
}

export function texmathPlugin(md) {
  const escape = md.utils.escapeHtml;
  // Before `escape`, which would turn `\(` into a plain `(`.
  md.inline.ruler.before("escape", "math_inline", mathInline);
  md.block.ruler.before("fence", "math_block", mathBlock, {
    alt: ["paragraph", "reference", "blockquote", "list"],
  });
  md.renderer.rules.math_inline = (tokens, idx) => {
    const kind = tokens[idx].meta.display ? "math-display" : "math-inline";
    return `<span class="${kind}">${escape(tokens[idx].content)}</span>`;
  };
  md.renderer.rules.math_block = (tokens, idx) => `<div class="math-display">${escape(tokens[idx].content)}</div>\n`;
}

let katex = null;
let loading = null;

function draw(element) {
  const tex = element.textContent;
  element.dataset.drawn = "";
  try {
    katex.render(tex, element, {
      displayMode: element.classList.contains("math-display"),
      throwOnError: true,
      strict: "ignore",
      trust: false,
      maxSize: 50,
      maxExpand: 1000,
    });
  } catch (error) {
    element.textContent = tex;
    element.classList.add("math-error");
    element.title = String(error.message || error);
  }
}

// Draw the math marked inside `container` (at once when KaTeX is loaded, else once it is).
export function renderMath(container) {
  if (!container.querySelector(SELECTOR)) return;
  if (katex) {
    for (const element of container.querySelectorAll(SELECTOR)) draw(element);
    return;
  }
  loading ??= import("../vendor/katex/katex.js").then((module) => {
    katex = module.default;
  });
  loading.then(
    () => {
      if (!container.isConnected) return;
      renderMath(container);
      container.dispatchEvent(new CustomEvent("rendered", { bubbles: true }));
    },
    () => {}, // not loaded: the TeX stays readable as text
  );
}
