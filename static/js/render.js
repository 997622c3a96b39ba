// Markdown -> safe DOM in the browser, for replies while they stream.
//
// The same rules as conversations/rendering.py on the server: markdown-it with raw HTML off,
// then DOMPurify with an allow-list of tags, links limited to http(s)/mailto and opened with
// rel="noopener noreferrer". An image from https is a link to it named by its alt text (the
// page loads nothing from another host); any other is its alt text. Math is marked by the
// plugin in math.js and drawn by KaTeX once sanitized. Code is highlighted with highlight.js.
//
// StreamRenderer keeps the browser's work proportional to what arrives: the text is cut at
// block boundaries (a blank line outside a code fence); finished blocks are rendered once and
// never touched again, and only the open last block is re-rendered, at most once a frame.

import markdownit from "../vendor/markdown-it/markdown-it.esm.min.js";
import DOMPurify from "../vendor/dompurify/purify.es.js";
import hljs from "../vendor/highlight.js/core.min.js";
import bash from "../vendor/highlight.js/languages/bash.min.js";
import c from "../vendor/highlight.js/languages/c.min.js";
import cpp from "../vendor/highlight.js/languages/cpp.min.js";
import css from "../vendor/highlight.js/languages/css.min.js";
import diff from "../vendor/highlight.js/languages/diff.min.js";
import go from "../vendor/highlight.js/languages/go.min.js";
import java from "../vendor/highlight.js/languages/java.min.js";
import javascript from "../vendor/highlight.js/languages/javascript.min.js";
import json from "../vendor/highlight.js/languages/json.min.js";
import markdown from "../vendor/highlight.js/languages/markdown.min.js";
import plaintext from "../vendor/highlight.js/languages/plaintext.min.js";
import python from "../vendor/highlight.js/languages/python.min.js";
import rust from "../vendor/highlight.js/languages/rust.min.js";
import shell from "../vendor/highlight.js/languages/shell.min.js";
import sql from "../vendor/highlight.js/languages/sql.min.js";
import typescript from "../vendor/highlight.js/languages/typescript.min.js";
import xml from "../vendor/highlight.js/languages/xml.min.js";
import yaml from "../vendor/highlight.js/languages/yaml.min.js";
import { renderMath, texmathPlugin } from "./math.js";

const languages = {
  bash, c, cpp, css, diff, go, java, javascript, json, markdown, plaintext, python, rust,
  shell, sql, typescript, xml, yaml,
};
for (const [name, grammar] of Object.entries(languages)) hljs.registerLanguage(name, grammar);

function highlight(code, lang) {
  const name = (lang || "").trim().split(/\s+/)[0];
  if (!name || !hljs.getLanguage(name) || code.length > 50000) return "";
  try {
    return hljs.highlight(code, { language: name, ignoreIllegals: true }).value;
  } catch {
    return "";
  }
}

function makeParser(withHighlight) {
  const md = markdownit("commonmark", {
    html: false,
    breaks: true,
    highlight: withHighlight ? highlight : null,
  });
  md.enable(["table", "strikethrough"]);
  md.renderer.rules.image = imageAsLink;
  md.use(texmathPlugin);
  return md;
}

// As conversations/rendering.py's _image_as_link.
function imageAsLink(tokens, idx, options, env, self) {
  const token = tokens[idx];
  const alt = self.renderInlineAsText(token.children, options, env);
  const src = token.attrGet("src") || "";
  if (!src.toLowerCase().startsWith("https://")) return escapeHtml(alt);
  const title = token.attrGet("title");
  const titleAttr = title ? ` title="${escapeHtml(title)}"` : "";
  return `<a href="${escapeHtml(src)}" class="image-link"${titleAttr}>${escapeHtml(alt || src)}</a>`;
}

const md = makeParser(true);
// The open last block of a streaming reply is re-rendered every frame: no highlighting there.
const mdPlain = makeParser(false);

const PURIFY = {
  ALLOWED_TAGS: [
    "a", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td", "th", "thead", "tr",
    "ul",
  ],
  ALLOWED_ATTR: ["href", "title", "class", "start"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  RETURN_DOM_FRAGMENT: true,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

export function sanitizeHtml(html) {
  return DOMPurify.sanitize(html, PURIFY);
}

export function markdownFragment(text, { plain = false } = {}) {
  return sanitizeHtml((plain ? mdPlain : md).render(text || ""));
}

export function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return null;
  }
}

export function isJsonMode(parameters) {
  return Boolean(parameters && parameters.response_format === "json_object");
}

// "valid" or "invalid" for a JSON-mode reply that has ended, "" otherwise (as
// conversations/rendering.py's json_check).
export function jsonState(text, parameters, status) {
  if (!isJsonMode(parameters) || status === "streaming" || !(text || "").trim()) return "";
  return prettyJson(text) === null ? "invalid" : "valid";
}

// The whole reply, rendered once: JSON-mode answers as indented JSON (or, when they do not
// parse, exactly as written), others as markdown.
export function replyFragment(text, parameters) {
  if (isJsonMode(parameters)) {
    const pretty = prettyJson(text);
    if (pretty !== null) {
      return sanitizeHtml(
        `<pre><code class="language-json">${highlight(pretty, "json") || escapeHtml(pretty)}</code></pre>`,
      );
    }
    if ((text || "").trim()) return sanitizeHtml(`<pre><code class="json-raw">${escapeHtml(text)}</code></pre>`);
  }
  return markdownFragment(text);
}

export function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

let strings = { copy: "Copy", copied: "Copied", copyCode: "Copy code" };
export function setStrings(value) {
  strings = { ...strings, ...value };
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

// Code blocks get a header with their language and a copy button; tables scroll sideways;
// math is drawn.
export function enhance(container) {
  renderMath(container);
  for (const pre of container.querySelectorAll("pre")) {
    if (pre.parentElement.classList.contains("code-block")) continue;
    const code = pre.querySelector("code");
    const lang = ((code && code.className.match(/language-([\w+-]+)/)) || [])[1] || "";
    if (code && !code.classList.contains("hljs")) code.classList.add("hljs");
    const block = document.createElement("div");
    block.className = "code-block";
    const header = document.createElement("div");
    header.className = "code-header";
    const label = document.createElement("span");
    label.textContent = lang;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy-code";
    button.textContent = strings.copy;
    button.setAttribute("aria-label", strings.copyCode);
    header.append(label, button);
    pre.replaceWith(block);
    block.append(header, pre);
  }
  for (const table of container.querySelectorAll("table")) {
    if (table.parentElement.classList.contains("table-wrap")) continue;
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    table.replaceWith(wrap);
    wrap.append(table);
  }
}

// Copy buttons: a code block's text, or a whole answer's markdown (kept in its template.source).
document.addEventListener("click", async (event) => {
  const code = event.target.closest(".copy-code");
  const answer = event.target.closest('.tool[data-action="copy"]');
  const button = code || answer;
  if (!button) return;
  const text = code
    ? code.closest(".code-block").querySelector("pre").innerText
    : answer.closest(".message").querySelector("template.source").content.textContent;
  try {
    await copyText(text);
    button.textContent = strings.copied;
  } catch {
    return;
  }
  setTimeout(() => {
    button.textContent = strings.copy;
  }, 1500);
});

const FENCE = /^ {0,3}(`{3,}|~{3,})/;

// Renders a reply into `element` as its text grows.
export class StreamRenderer {
  constructor(element, { json = false } = {}) {
    this.element = element;
    this.json = json; // JSON mode: the raw text in one code block until the reply ends
    this.reset("");
  }

  reset(text) {
    this.text = "";
    this.committed = 0; // text[0:committed] is rendered in finished blocks
    this.scanned = 0; // start of the first line not yet scanned for boundaries
    this.boundary = 0; // the latest block boundary found
    this.fence = null; // the open code fence's marker, if any
    this.element.replaceChildren();
    this.tail = null;
    this.code = null;
    this.scheduled = false;
    if (text) this.append(text);
  }

  append(delta) {
    this.text += delta;
    if (!this.json) this.scan();
    this.schedule();
  }

  // Look at each new complete line once: fences open and close, blank lines end blocks.
  scan() {
    let end;
    while ((end = this.text.indexOf("\n", this.scanned)) !== -1) {
      const line = this.text.slice(this.scanned, end);
      this.scanned = end + 1;
      const fence = line.match(FENCE);
      if (fence) {
        const marker = fence[1];
        if (!this.fence) this.fence = marker;
        else if (marker[0] === this.fence[0] && marker.length >= this.fence.length && !line.slice(fence[0].length).trim()) {
          this.fence = null;
          this.boundary = this.scanned;
        }
      } else if (!this.fence && !line.trim()) {
        this.boundary = this.scanned;
      }
    }
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    const run = () => {
      if (!this.scheduled) return;
      this.scheduled = false;
      this.flush();
    };
    requestAnimationFrame(run);
    setTimeout(run, 100); // rAF sleeps in background tabs
  }

  flush() {
    if (this.json) {
      if (!this.code) {
        const pre = document.createElement("pre");
        this.code = document.createElement("code");
        this.code.className = "json-raw";
        pre.append(this.code);
        this.element.replaceChildren(pre);
      }
      this.code.textContent = this.text;
      this.element.dispatchEvent(new CustomEvent("rendered", { bubbles: true }));
      return;
    }
    if (this.boundary > this.committed) {
      const block = document.createElement("div");
      block.className = "md-block";
      block.append(markdownFragment(this.text.slice(this.committed, this.boundary)));
      enhance(block);
      if (this.tail) this.tail.before(block);
      else this.element.append(block);
      this.committed = this.boundary;
    }
    const rest = this.text.slice(this.committed);
    if (!this.tail) {
      this.tail = document.createElement("div");
      this.tail.className = "md-block md-tail";
      this.element.append(this.tail);
    }
    this.tail.replaceChildren(markdownFragment(rest, { plain: true }));
    enhance(this.tail);
    this.element.dispatchEvent(new CustomEvent("rendered", { bubbles: true }));
  }

  // The stream is over: a paint still scheduled must not draw over the final rendering.
  stop() {
    this.scheduled = false;
  }
}
