// Tokens the open conversation used: the server's total when the page was made, kept up to date
// from the replies on the page (a reply that ends adds its tokens, a regenerated one takes its
// own away). Each reply carries its usage in data-prompt-tokens / data-completion-tokens, and
// data-usage-estimated when the app counted it (the model's server reported none): the total is
// then shown as estimated. A conversation with nothing counted yet shows nothing.

function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, key) => String(values[key] ?? ""));
}

export class ConversationUsage {
  constructor(list, { strings, language }) {
    this.list = list;
    this.strings = strings;
    this.numbers = new Intl.NumberFormat(language || undefined);
    this.elements = [...document.querySelectorAll(".conversation-usage")];
    const first = this.elements[0];
    const server = {
      prompt: Number(first?.dataset.prompt || 0),
      completion: Number(first?.dataset.completion || 0),
      estimated: Number(first?.dataset.estimated || 0),
    };
    const shown = this.onPage();
    // What the server counted for replies that are not on the page (older, not loaded).
    this.base = {
      prompt: server.prompt - shown.prompt,
      completion: server.completion - shown.completion,
      estimated: server.estimated - shown.estimated,
    };
    list.addEventListener("change", () => this.render());
  }

  onPage() {
    const sum = { prompt: 0, completion: 0, estimated: 0 };
    for (const item of this.list.list.querySelectorAll(':scope > .message[data-role="assistant"]')) {
      sum.prompt += Number(item.dataset.promptTokens || 0);
      sum.completion += Number(item.dataset.completionTokens || 0);
      if (item.dataset.usageEstimated) sum.estimated += 1;
    }
    return sum;
  }

  // Older replies loaded on scroll-up were in the server's total already.
  adopt(before) {
    const after = this.onPage();
    this.base.prompt -= after.prompt - before.prompt;
    this.base.completion -= after.completion - before.completion;
    this.base.estimated -= after.estimated - before.estimated;
    this.render();
  }

  render() {
    if (!this.elements.length) return;
    const shown = this.onPage();
    const prompt = this.base.prompt + shown.prompt;
    const completion = this.base.completion + shown.completion;
    const estimated = this.base.estimated + shown.estimated;
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
