// Token confidence: the heatmap of a reply, its summary, and the tooltip that shows a token's
// probability and the alternatives the model weighed, on hover and on keyboard focus.
//
// The same markup as conversations/templatetags/chat.py renders for a stored reply
// (`token_heatmap`, `confidence_summary`), and the same figures as conversations/confidence.py.

import { el, format } from "./dom.js";

const LEAST_CERTAIN = 5;

let strings = {
  heatmap: "Heatmap",
  heatmapLabel: "Token confidence heatmap. Arrow keys move between tokens.",
  tokenConfidence: "Token confidence",
  confidenceSummary: "Confidence: mean %(mean)s · lowest %(lowest)s · %(count)s tokens",
  leastCertain: "Least certain:",
  probability: "Probability",
  alternatives: "Alternatives",
  noAlternatives: "No alternatives recorded.",
};

export function setConfidenceStrings(value) {
  strings = { ...strings, ...value };
}

export function probability(logprob) {
  const value = Math.exp(Number(logprob));
  if (!Number.isFinite(value)) return 0;
  return Math.min(Math.max(value, 0), 1);
}

export function level(p) {
  if (p >= 0.9) return 4;
  if (p >= 0.6) return 3;
  if (p >= 0.3) return 2;
  return 1;
}

// A token as a person can read it: line breaks and edge spaces made visible.
export function shown(token) {
  const text = token.replaceAll("\n", "↵").replaceAll("\t", "⇥");
  const stripped = text.replace(/^ +| +$/g, "");
  if (!stripped) return "␣".repeat(text.length);
  const lead = text.length - text.replace(/^ +/, "").length;
  const trail = text.length - text.replace(/ +$/, "").length;
  return "␣".repeat(lead) + stripped + "␣".repeat(trail);
}

export function tokensOf(logprobs) {
  return (logprobs || [])
    .filter((entry) => entry && typeof entry === "object")
    .map((entry, index) => ({
      index,
      text: String(entry.token ?? ""),
      p: probability(entry.logprob),
      alternatives: (entry.top_logprobs || []).map((alt) => [String(alt.token ?? ""), probability(alt.logprob)]),
    }));
}

// Mean and lowest probability, and the least certain tokens (whitespace left out).
export function summarize(logprobs) {
  const tokens = tokensOf(logprobs);
  if (!tokens.length) return null;
  const mean = tokens.reduce((sum, t) => sum + t.p, 0) / tokens.length;
  const byDoubt = (a, b) => a.p - b.p || a.index - b.index;
  const lowest = [...tokens].sort(byDoubt)[0];
  const least = tokens.filter((t) => t.text.trim()).sort(byDoubt).slice(0, LEAST_CERTAIN);
  return { count: tokens.length, mean, lowest, least };
}

const percent = (p) => Math.round(p * 100);

function tokenSpan(token, tabIndex, text = null) {
  const span = el("span", `token conf-${level(token.p)}`, text ?? token.text);
  span.tabIndex = tabIndex;
  span.dataset.p = token.p.toFixed(4);
  span.dataset.alts = JSON.stringify(token.alternatives.map(([alt, p]) => [alt, Math.round(p * 10000) / 10000]));
  // A chip shows the token made readable; the heatmap shows the token itself.
  if (text !== null) span.dataset.token = token.text;
  return span;
}

// The reply painted by confidence: hidden until its toggle shows it.
export function heatmap(logprobs) {
  const tokens = tokensOf(logprobs);
  if (!tokens.length) return null;
  const box = el("div", "heatmap");
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", strings.heatmapLabel);
  box.hidden = true;
  tokens.forEach((token, i) => box.append(tokenSpan(token, i === 0 ? 0 : -1)));
  return box;
}

// The summary line with the heatmap toggle.
export function summaryBar(logprobs) {
  const summary = summarize(logprobs);
  if (!summary) return null;
  const bar = el("div", "confidence");
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", strings.tokenConfidence);
  const toggle = el("button", "tool heatmap-toggle", strings.heatmap);
  toggle.type = "button";
  toggle.setAttribute("aria-pressed", "false");
  const text = format(strings.confidenceSummary, {
    mean: `${percent(summary.mean)}%`,
    lowest: `${percent(summary.lowest.p)}%`,
    count: summary.count,
  });
  bar.append(toggle, " ", el("span", "confidence-summary", text));
  if (summary.least.length) {
    const least = el("span", "least-certain");
    least.append(el("span", "least-certain-label", strings.leastCertain));
    for (const token of summary.least) {
      const chip = el("span", "chip");
      chip.append(tokenSpan(token, 0, shown(token.text)), " ", el("span", "chip-p", `${percent(token.p)}%`));
      least.append(" ", chip);
    }
    bar.append(" ", least);
  }
  return bar;
}

// Show or hide a reply's heatmap in place of its rendered text.
export function setHeatmap(item, on) {
  const box = item.querySelector(".heatmap");
  const toggle = item.querySelector(".heatmap-toggle");
  if (!box || !toggle) return;
  box.hidden = !on;
  item.querySelector(".content").hidden = on;
  toggle.setAttribute("aria-pressed", String(on));
  if (on) item.dataset.view = "heatmap";
  else delete item.dataset.view;
}

// The one tooltip of the page, filled from the token under the pointer or the focus.
let tip = null;
let tipFor = null;

function tooltip() {
  if (tip) return tip;
  tip = el("div", "token-tip");
  tip.id = "token-tip";
  tip.setAttribute("role", "tooltip");
  tip.hidden = true;
  document.body.append(tip);
  return tip;
}

function showTip(token) {
  const box = tooltip();
  const p = Number(token.dataset.p || 0);
  let alternatives = [];
  try {
    alternatives = JSON.parse(token.dataset.alts || "[]");
  } catch {
    alternatives = [];
  }
  const text = token.dataset.token ?? token.textContent;
  const head = el("p", "tip-head");
  head.append(el("code", "tip-token", shown(text)), " ");
  head.append(el("strong", "tip-p", `${percent(p)}%`));
  const body = [head];
  if (alternatives.length) {
    // Every candidate the model weighed at this position, the chosen one marked.
    body.push(el("p", "tip-label", strings.alternatives));
    const list = el("ul", "tip-alts");
    for (const [alt, altP] of alternatives) {
      const row = el("li", alt === text ? "chosen" : "");
      row.append(el("code", "", shown(alt)), " ", el("span", "", `${percent(altP)}%`));
      list.append(row);
    }
    body.push(list);
  } else {
    body.push(el("p", "tip-label", strings.noAlternatives));
  }
  box.replaceChildren(...body);
  box.hidden = false;
  tipFor?.removeAttribute("aria-describedby");
  tipFor = token;
  token.setAttribute("aria-describedby", box.id);
  // Fixed position next to the token, kept inside the window. (Style properties set from a
  // script are allowed by the Content-Security-Policy; inline style attributes are not.)
  const rect = token.getBoundingClientRect();
  const width = box.offsetWidth;
  const height = box.offsetHeight;
  const left = Math.max(4, Math.min(rect.left, window.innerWidth - width - 4));
  const below = rect.bottom + 6;
  const top = below + height > window.innerHeight ? Math.max(4, rect.top - height - 6) : below;
  box.style.left = `${left}px`;
  box.style.top = `${top}px`;
}

function hideTip() {
  if (!tip) return;
  tip.hidden = true;
  tipFor?.removeAttribute("aria-describedby");
  tipFor = null;
}

function isToken(target) {
  return target instanceof Element && target.matches(".heatmap .token, .least-certain .token");
}

// Arrow keys move between the tokens of a heatmap (one tab stop for the whole reply).
function moveFocus(token, key) {
  const box = token.closest(".heatmap");
  if (!box) return false;
  const tokens = [...box.querySelectorAll(".token")];
  const at = tokens.indexOf(token);
  const next = { ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1, Home: 0, End: tokens.length - 1 }[key];
  if (next === undefined || next < 0 || next >= tokens.length) return false;
  token.tabIndex = -1;
  tokens[next].tabIndex = 0;
  tokens[next].focus();
  return true;
}

let ready = false;

// Wire the page once: toggles, tooltips on hover and focus, keyboard moves.
export function setupConfidence(value) {
  if (value) setConfidenceStrings(value);
  if (ready) return;
  ready = true;
  document.addEventListener("click", (event) => {
    const toggle = event.target.closest(".heatmap-toggle");
    if (!toggle) return;
    const item = toggle.closest(".message");
    if (item) setHeatmap(item, toggle.getAttribute("aria-pressed") !== "true");
  });
  document.addEventListener("mouseover", (event) => {
    if (isToken(event.target)) showTip(event.target);
  });
  document.addEventListener("mouseout", (event) => {
    if (!isToken(event.target) || event.target !== tipFor) return;
    if (isToken(document.activeElement)) showTip(document.activeElement);
    else hideTip();
  });
  document.addEventListener("focusin", (event) => {
    if (isToken(event.target)) showTip(event.target);
  });
  document.addEventListener("focusout", (event) => {
    if (event.target === tipFor) hideTip();
  });
  document.addEventListener("keydown", (event) => {
    if (!isToken(event.target)) return;
    if (event.key === "Escape" && tip && !tip.hidden) {
      event.preventDefault();
      hideTip();
    } else if (moveFocus(event.target, event.key)) {
      event.preventDefault();
    }
  });
  document.addEventListener("scroll", hideTip, true);
}
