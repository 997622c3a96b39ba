// The message box: Enter sends, Shift+Enter breaks the line, an Enter that ends an IME
// composition (Korean, Japanese, Chinese) does not send, Esc stops the answer.
// What the user typed is kept (per conversation, in sessionStorage) until the server has
// stored it: a reload or a dropped connection loses nothing.

import { format } from "./dom.js";

export function isComposing(event, composition) {
  // keyCode 229 is what browsers report for keys the IME handles (Safari ends a composition
  // with a keydown that has isComposing false but keyCode 229).
  return event.isComposing || composition.active || event.keyCode === 229;
}

// Track composition on a textarea. `compositionend` fires before the Enter's keydown in some
// browsers: that Enter still belongs to the composition, so it stays "active" until the next
// task.
export function trackComposition(textarea) {
  const composition = { active: false };
  textarea.addEventListener("compositionstart", () => {
    composition.active = true;
  });
  textarea.addEventListener("compositionend", () => {
    setTimeout(() => {
      composition.active = false;
    }, 0);
  });
  return composition;
}

export function autoGrow(textarea) {
  const grow = () => {
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight, 240)}px`;
  };
  textarea.addEventListener("input", grow);
  grow();
  return grow;
}

// Near the limit the box counts the characters ("19,950 / 20,000"); over it, it says so and
// Send waits. Nothing is cut: the server counts the same way (code points of the trimmed text)
// and refuses a longer message itself.
const COUNT_FROM = 0.9; // of the limit

export class Composer extends EventTarget {
  constructor(form, { draftKey, maxChars = 0, strings = {}, language } = {}) {
    super();
    this.form = form;
    this.textarea = form.querySelector("textarea");
    this.draftKey = draftKey;
    this.maxChars = maxChars;
    this.strings = strings;
    this.numbers = new Intl.NumberFormat(language || document.documentElement.lang || undefined);
    this.counter = form.querySelector(".composer-count");
    this.sendButton = form.querySelector("button[type=submit]");
    this.tooLong = false;
    this.composition = trackComposition(this.textarea);
    this.grow = autoGrow(this.textarea);
    const draft = draftKey && sessionStorage.getItem(draftKey);
    if (draft && !this.textarea.value) this.textarea.value = draft;
    this.grow();
    this.count();
    this.textarea.addEventListener("input", () => {
      this.saveDraft();
      this.count();
    });
    this.textarea.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return;
      if (isComposing(event, this.composition)) return;
      event.preventDefault();
      this.submit();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  get value() {
    return this.textarea.value;
  }

  set value(text) {
    this.textarea.value = text;
    this.saveDraft();
    this.grow();
    this.count();
  }

  count() {
    if (!this.maxChars || !this.counter) return;
    const length = [...this.textarea.value.trim()].length;
    this.tooLong = length > this.maxChars;
    const values = { count: this.numbers.format(length), max: this.numbers.format(this.maxChars) };
    this.counter.hidden = length < this.maxChars * COUNT_FROM;
    this.counter.textContent = format(this.tooLong ? this.strings.messageTooLong : this.strings.messageCount, values);
    this.counter.classList.toggle("over", this.tooLong);
    if (this.tooLong) this.textarea.setAttribute("aria-invalid", "true");
    else this.textarea.removeAttribute("aria-invalid");
    if (this.sendButton) this.sendButton.disabled = this.tooLong;
  }

  saveDraft() {
    if (!this.draftKey) return;
    if (this.textarea.value) sessionStorage.setItem(this.draftKey, this.textarea.value);
    else sessionStorage.removeItem(this.draftKey);
  }

  submit() {
    const text = this.textarea.value.trim();
    // With files attached (`canSendEmpty`), a message may have no text.
    if ((!text && !this.canSendEmpty?.()) || this.tooLong) return;
    this.dispatchEvent(new CustomEvent("send", { detail: { text } }));
  }

  focus() {
    this.textarea.focus();
  }
}
