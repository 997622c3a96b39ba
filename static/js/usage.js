// Tokens the open conversation used, every version of every answer: the server's total when
// the page was made (`conversation_totals`), kept up to date from the replies the page sees. Each
// reply carries its usage in data-prompt-tokens / data-completion-tokens, and
// data-usage-estimated when the app counted it (the model's server reported none): the total is
// then shown as estimated. A reply the page shows is added once, by what its usage changed since
// the page last saw it; one no newer than the server's newest reply at load (data-last-reply:
// another version switched to, an older page loaded) was in the total already. A reply taken
// off the page (another version chosen) stays counted. Nothing counted yet shows nothing.

import { format } from "./dom.js";

const usageOf = (item) => ({
  prompt: Number(item.dataset.promptTokens || 0),
  completion: Number(item.dataset.completionTokens || 0),
  estimated: item.dataset.usageEstimated ? 1 : 0,
});

export class ConversationUsage {
  constructor(list, { strings, language }) {
    this.list = list;
    this.strings = strings;
    this.numbers = new Intl.NumberFormat(language || undefined);
    this.elements = [...document.querySelectorAll(".conversation-usage")];
    const first = this.elements[0];
    this.total = {
      prompt: Number(first?.dataset.prompt || 0),
      completion: Number(first?.dataset.completion || 0),
      estimated: Number(first?.dataset.estimated || 0),
    };
    this.lastReplyId = Number(first?.dataset.lastReply || 0);
    this.seen = new Map(); // reply id -> its usage as counted in `total`
    this.count();
    list.addEventListener("change", () => this.render());
  }

  // Bring the total in line with the replies on the page.
  count() {
    for (const item of this.list.list.querySelectorAll(':scope > .message[data-role="assistant"]')) {
      const id = Number(item.dataset.id);
      const usage = usageOf(item);
      const before = this.seen.get(id) ?? (id <= this.lastReplyId ? usage : { prompt: 0, completion: 0, estimated: 0 });
      for (const key of ["prompt", "completion", "estimated"]) this.total[key] += usage[key] - before[key];
      this.seen.set(id, usage);
    }
  }

  render() {
    if (!this.elements.length) return;
    this.count();
    const { prompt, completion, estimated } = this.total;
    const n = (value) => this.numbers.format(value);
    const template = estimated > 0 ? this.strings.usageTextEstimated : this.strings.usageText;
    const counted = prompt + completion > 0;
    const text = counted ? format(template, { total: n(prompt + completion), prompt: n(prompt), completion: n(completion) }) : "";
    for (const element of this.elements) {
      element.dataset.prompt = prompt;
      element.dataset.completion = completion;
      element.dataset.estimated = estimated;
      element.textContent = text;
      element.hidden = !counted;
    }
  }
}
