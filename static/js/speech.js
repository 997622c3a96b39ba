// Read aloud: an answer spoken by the browser's own voices (the Web Speech API's
// speechSynthesis; no server, no key), in a Korean voice when it is written in Korean. Code
// blocks are named, not read out. The button shows while it reads; pressed again, it stops.

const synth = window.speechSynthesis;
// Chrome stops a long utterance after about 15 seconds: the text goes in sentences, grouped.
const CHUNK_CHARS = 220;
let reading = null; // the button of the answer being read

function spokenText(message, strings) {
  const content = message.querySelector(".content").cloneNode(true);
  for (const code of content.querySelectorAll(".code-block, pre")) {
    code.replaceWith(`\n${strings.codeBlock}\n`);
  }
  // Formulas: their rendering, not also the TeX kept beside it for screen readers.
  for (const hidden of content.querySelectorAll(".katex-mathml, template, button")) hidden.remove();
  for (const block of content.querySelectorAll("p, li, h1, h2, h3, h4, h5, h6, tr, blockquote, br")) {
    block.append("\n");
  }
  return content.textContent.replace(/[ \t]+/g, " ").replace(/\s*\n\s*/g, "\n").trim();
}

// A voice for the text's language: Korean when it has Hangul, English when it is all Latin,
// else the browser's own choice.
function languageOf(text) {
  if (/[\uac00-\ud7a3]/.test(text)) return "ko-KR";
  if (!/[^\u0000-\u024f\u2000-\u206f]/.test(text)) return "en-US";
  return "";
}

function chunks(text) {
  const parts = [];
  let current = "";
  for (const sentence of text.split(/(?<=[.!?。？！])\s+|\n+/)) {
    if (current && current.length + sentence.length > CHUNK_CHARS) {
      parts.push(current);
      current = "";
    }
    current = current ? `${current} ${sentence}` : sentence;
  }
  if (current) parts.push(current);
  return parts;
}

function stop() {
  reading?.setAttribute("aria-pressed", "false");
  reading = null;
  synth.cancel();
}

function read(button, strings) {
  const again = reading === button;
  stop();
  if (again) return;
  const text = spokenText(button.closest(".message"), strings);
  const parts = chunks(text);
  if (!parts.length) return;
  const lang = languageOf(text);
  reading = button;
  button.setAttribute("aria-pressed", "true");
  parts.forEach((part, index) => {
    const utterance = new SpeechSynthesisUtterance(part);
    if (lang) utterance.lang = lang;
    if (index === parts.length - 1) {
      utterance.addEventListener("end", () => {
        if (reading === button) stop();
      });
    }
    synth.speak(utterance);
  });
}

export function setupReadAloud(strings) {
  if (!synth || !("SpeechSynthesisUtterance" in window)) return;
  document.documentElement.dataset.speech = "";
  document.addEventListener("click", (event) => {
    const button = event.target.closest('.tool[data-action="read"]');
    if (button) read(button, strings);
  });
  // Leaving the page stops the voice (it would go on reading after the tab closed).
  window.addEventListener("pagehide", stop);
}
