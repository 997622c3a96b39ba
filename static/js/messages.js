// The list of messages: builds and updates their elements from the socket's frames, and keeps
// each streaming reply's text and `seq` so no token is lost or shown twice (docs/protocol.md).
//
// Elements look exactly like templates/conversations/_message.html renders them.
//
// A conversation is a tree of messages and the list shows one path through it, the active
// path (conversations/tree.py): a message created follows its parent, and whatever was shown
// after that parent was another branch; `version.selected` brings the path after a fork.
// Along a path the ids grow, so the list stays in id order.

import { heatmap, setHeatmap, summaryBar } from "./confidence.js";
import { foldLongMessages } from "./fold.js";
import { StreamRenderer, enhance, isJsonMode, jsonState, replyFragment } from "./render.js";
import { attachmentList } from "./attachments.js";
import { el, format } from "./dom.js";

const NOTED = new Set(["stopped", "truncated", "filtered", "error", "interrupted"]);

export class MessageList extends EventTarget {
  constructor(list, { strings, emoji, language }) {
    super();
    this.list = list;
    this.strings = strings;
    this.emoji = emoji || "💬";
    this.dateFormat = new Intl.DateTimeFormat(language || undefined, {
      dateStyle: "medium",
      timeStyle: "short",
    });
    this.numberFormat = new Intl.NumberFormat(language || undefined);
    this.streams = new Map(); // reply id -> {seq, text, renderer, pending}
    this.catchUp = null; // {after, messages} while the pages of a `sync` arrive
    this.lastSyncId = null;
    for (const item of list.querySelectorAll(".message")) {
      if (item.dataset.status === "streaming") this.streamOf(Number(item.dataset.id));
    }
    enhance(list);
    foldLongMessages(list, strings);
    this.refresh();
  }

  // Reading the list.

  items() {
    return this.list.querySelectorAll(":scope > .message");
  }

  find(id) {
    return this.list.querySelector(`:scope > .message[data-id="${Number(id)}"]`);
  }

  firstId() {
    const first = this.list.querySelector(":scope > .message");
    return first ? Number(first.dataset.id) : null;
  }

  lastId() {
    const items = this.items();
    return items.length ? Number(items[items.length - 1].dataset.id) : null;
  }

  streaming() {
    return this.list.querySelector(':scope > .message[data-status="streaming"]');
  }

  lastUserMessage() {
    const users = this.list.querySelectorAll(':scope > .message[data-role="user"]');
    return users.length ? users[users.length - 1] : null;
  }

  // Building elements.

  build(message) {
    const item = el("li", "message");
    item.id = `message-${message.id}`;
    item.dataset.id = message.id;
    item.dataset.role = message.role;
    const bubble = el("div", "bubble");
    const tools = el("div", "message-tools");
    if (message.role === "user") {
      bubble.append(el("div", "content plain", message.content));
      const edit = el("button", "tool", this.strings.edit);
      edit.type = "button";
      edit.dataset.action = "edit";
      tools.append(edit, this.branchButton());
      item.append(bubble, tools);
    } else {
      const avatar = el("div", "avatar", this.emoji);
      avatar.setAttribute("aria-hidden", "true");
      const error = el("div", "reply-error");
      error.setAttribute("role", "alert");
      bubble.append(el("div", "content markdown"), el("template", "source"), el("p", "json-note"), el("p", "status-note"), error, tools);
      const copy = el("button", "tool", this.strings.copy);
      copy.type = "button";
      copy.dataset.action = "copy";
      copy.setAttribute("aria-label", this.strings.copyAnswer);
      const read = el("button", "tool", this.strings.readAloud);
      read.type = "button";
      read.dataset.action = "read";
      read.setAttribute("aria-pressed", "false");
      tools.append(copy, read);
      for (const [action, label] of [["retry", this.strings.retry], ["continue", this.strings.continue]]) {
        const button = el("button", "tool", label);
        button.type = "button";
        button.dataset.action = action;
        tools.append(button);
      }
      const edit = el("button", "tool", this.strings.edit);
      edit.type = "button";
      edit.dataset.action = "edit";
      edit.setAttribute("aria-label", this.strings.editAnswer);
      tools.append(edit, this.branchButton(), el("span", "edited-mark", this.strings.editedByYou));
      tools.append(this.rateButton("good"), this.rateButton("bad"), el("span", "usage"));
      item.append(avatar, bubble);
    }
    item.append(el("p", "excluded-note", this.strings.excludedNote));
    this.update(item, message);
    return item;
  }

  // 👍 / 👎 (templates/conversations/_message.html): pressed is the rating given.
  rateButton(rating) {
    const button = el("button", "tool rate", rating === "good" ? "👍" : "👎");
    button.type = "button";
    button.dataset.action = "rate";
    button.dataset.rating = rating;
    const label = rating === "good" ? this.strings.goodAnswer : this.strings.badAnswer;
    button.setAttribute("aria-label", label);
    button.title = label;
    button.setAttribute("aria-pressed", "false");
    return button;
  }

  showRating(item, rating) {
    for (const button of item.querySelectorAll('.tool[data-action="rate"]')) {
      button.setAttribute("aria-pressed", String(button.dataset.rating === rating));
    }
  }

  branchButton() {
    const button = el("button", "tool", this.strings.branch);
    button.type = "button";
    button.dataset.action = "branch";
    button.title = this.strings.branchTitle;
    return button;
  }

  // `‹ K / N ›` at a fork: the message's place among its versions (templates/conversations/
  // _versions.html).
  updateVersions(item, message) {
    const tools = item.querySelector(".message-tools");
    tools.querySelector(":scope > .versions")?.remove();
    const version = message.version || 1;
    const versions = message.versions || 1;
    if (versions < 2) {
      delete item.dataset.version;
      return;
    }
    item.dataset.version = `${version}/${versions}`;
    const box = el("span", "versions");
    const step = (delta, label, text, disabled) => {
      const button = el("button", "tool version-step", text);
      button.type = "button";
      button.dataset.step = String(delta);
      button.setAttribute("aria-label", label);
      button.disabled = disabled;
      return button;
    };
    box.append(
      step(-1, this.strings.previousVersion, "‹", version <= 1),
      el("span", "version-label", `${version} / ${versions}`),
      step(1, this.strings.nextVersion, "›", version >= versions),
    );
    tools.prepend(box);
  }

  // Bring an element in line with a message payload (not the text of a live stream).
  update(item, message) {
    if (message.version !== undefined) this.updateVersions(item, message);
    if (message.role === "user") {
      item.querySelector(".content").textContent = message.content;
      item.querySelector(".bubble > .attachments")?.remove();
      if (message.attachments?.length) {
        item.querySelector(".bubble").prepend(attachmentList(message.attachments, this.strings));
      }
      if (message.client_id) item.dataset.clientId = message.client_id;
      return;
    }
    item.dataset.status = message.status;
    if (message.rating !== undefined) this.showRating(item, message.rating);
    if (message.edited) item.dataset.edited = "";
    else delete item.dataset.edited;
    if (isJsonMode(message.parameters)) item.dataset.format = "json_object";
    else delete item.dataset.format;
    const json = jsonState(message.content, message.parameters, message.status);
    if (json) item.dataset.json = json;
    else delete item.dataset.json;
    item.querySelector(".json-note").textContent = json === "invalid" ? this.strings.jsonInvalid : "";
    const usage = message.usage || {};
    const hasUsage = usage.prompt_tokens != null || usage.completion_tokens != null;
    for (const [key, value] of [["promptTokens", usage.prompt_tokens], ["completionTokens", usage.completion_tokens]]) {
      if (value != null) item.dataset[key] = value;
      else delete item.dataset[key];
    }
    // Counted by the app: the model's server reported no usage.
    const estimated = hasUsage && Boolean(usage.estimated);
    if (estimated) item.dataset.usageEstimated = "true";
    else delete item.dataset.usageEstimated;
    const usageLine = item.querySelector(".usage");
    usageLine.textContent = hasUsage
      ? this.usageText(usage.prompt_tokens || 0, usage.completion_tokens || 0, estimated)
      : "";
    if (estimated) usageLine.title = this.strings.usageEstimated;
    else usageLine.removeAttribute("title");
    if (message.context_from_id) item.dataset.contextFrom = message.context_from_id;
    else delete item.dataset.contextFrom;
    item.querySelector(".status-note").textContent = NOTED.has(message.status)
      ? this.strings.statusNotes[message.status] || ""
      : "";
    item.querySelector(".reply-error").textContent = message.error || "";
    // The answer as the model wrote it (markdown), for its Copy button.
    item.querySelector("template.source").content.replaceChildren(message.content || "");
    const content = item.querySelector(".content");
    if (message.status !== "streaming") {
      content.replaceChildren(replyFragment(message.content, message.parameters));
      enhance(content);
    } else if (!this.streams.has(message.id) || this.streams.get(message.id).seq === null) {
      // A saved snapshot, shown until the live state arrives.
      content.replaceChildren(replyFragment(message.content, message.parameters));
    }
    const tools = item.querySelector(".message-tools");
    tools.querySelector(".parameters")?.remove();
    if (message.parameters) tools.append(this.parameters(message));
    this.updateConfidence(item, message);
  }

  // The heatmap (in place of the text while its toggle is on) and the summary under the tools.
  updateConfidence(item, message) {
    const on = item.dataset.view === "heatmap";
    item.querySelector(":scope .heatmap")?.remove();
    item.querySelector(":scope .confidence")?.remove();
    const logprobs = message.status === "streaming" ? null : message.logprobs;
    if (!logprobs && message.has_logprobs && message.status !== "streaming") {
      // Too large for the socket's frames: fetched over HTTP (docs/protocol.md).
      this.fetchLogprobs(item, message);
    }
    const box = logprobs && logprobs.length ? heatmap(logprobs) : null;
    if (!box) {
      delete item.dataset.view;
      item.querySelector(".content").hidden = false;
      return;
    }
    item.querySelector(".content").after(box);
    item.querySelector(".message-tools").after(summaryBar(logprobs));
    setHeatmap(item, on);
  }

  async fetchLogprobs(item, message) {
    const url = this.list.dataset.logprobsUrl?.replace(/\/0\/logprobs\/$/, `/${Number(message.id)}/logprobs/`);
    if (!url) return;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const { logprobs } = await response.json();
      if (item.isConnected && logprobs.length) this.updateConfidence(item, { ...message, logprobs });
    } catch {
      // The answer stays shown without its confidence; a reload tries again.
    }
  }

  usageText(prompt, completion, estimated = false) {
    const n = (value) => this.numberFormat.format(value);
    const template = estimated ? this.strings.usageTextEstimated : this.strings.usageText;
    return format(template, { total: n(prompt + completion), prompt: n(prompt), completion: n(completion) });
  }

  parameters(message) {
    const s = this.strings;
    const p = message.parameters;
    const details = el("details", "parameters");
    details.append(el("summary", "", s.parameters));
    const list = el("dl");
    const rows = [
      [s.model, p.model || message.model],
      [s.temperature, p.temperature],
      [s.maxTokens, p.max_completion_tokens ?? s.noLimit],
      [s.format, p.response_format === "json_object" ? s.formatJson : s.formatText],
      [s.tokenConfidence, p.logprobs ? s.on : s.off],
    ];
    const usage = message.usage || {};
    if (usage.prompt_tokens !== null && usage.prompt_tokens !== undefined) {
      const template = usage.estimated ? s.tokensUsedEstimated : s.tokensUsed;
      rows.push([s.tokens, format(template, { prompt: usage.prompt_tokens, completion: usage.completion_tokens })]);
    }
    for (const [label, value] of rows) list.append(el("dt", "", label), el("dd", "", String(value)));
    if (message.created_at) {
      const time = el("time", "", this.dateFormat.format(new Date(message.created_at)));
      time.dateTime = message.created_at;
      const dd = el("dd");
      dd.append(time);
      list.append(el("dt", "", s.answeredAt), dd);
    }
    details.append(list);
    return details;
  }

  // Placing and changing messages.

  insert(item) {
    const id = Number(item.dataset.id);
    for (const other of this.items()) {
      if (Number(other.dataset.id) > id) {
        other.before(item);
        return;
      }
    }
    this.list.append(item);
  }

  upsert(message) {
    let item = this.find(message.id);
    if (item) this.update(item, message);
    else {
      item = this.build(message);
      this.insert(item);
      const stream = this.streams.get(message.id);
      if (message.status === "streaming" && stream && stream.seq !== null) {
        // Shown again (its branch chosen again): the text it streamed meanwhile.
        this.rendererOf(message.id, stream)?.reset(stream.text);
      }
    }
    if (message.role === "user" && message.client_id) {
      this.dispatchEvent(new CustomEvent("stored", { detail: { clientId: message.client_id } }));
    }
    return item;
  }

  prependHtml(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    const items = [...template.content.querySelectorAll(".message")];
    for (const item of items.reverse()) {
      if (!this.find(item.dataset.id)) this.list.prepend(item);
    }
    enhance(this.list);
    this.refresh();
  }

  // Take a message off the list: it is on another branch now. A reply still streaming
  // there goes on, and its text with it, for when its branch is shown again.
  takeOff(item) {
    item.remove();
    const stream = this.streams.get(Number(item.dataset.id));
    if (stream) {
      stream.renderer?.stop();
      stream.renderer = null;
    }
  }

  // A message created follows its parent on the active path: what the list showed after
  // the parent belongs to another branch now. A parent older than the list is not loaded
  // (everything shown came after it); one the list should show but does not means the list
  // lost the path: the page shows it again.
  follow(message) {
    if (message.parent_id === undefined || this.find(message.id)) return true;
    const items = [...this.items()];
    let start = 0;
    if (message.parent_id !== null) {
      const parent = items.findIndex((item) => Number(item.dataset.id) === message.parent_id);
      if (parent === -1) {
        const first = this.firstId();
        if (first !== null && message.parent_id > first) {
          window.location.reload();
          return false;
        }
      }
      start = parent + 1;
    }
    for (const item of items.slice(start)) this.takeOff(item);
    return true;
  }

  // Streams.

  streamOf(id) {
    let stream = this.streams.get(id);
    if (!stream) {
      stream = { seq: null, text: "", renderer: null, pending: new Map() };
      this.streams.set(id, stream);
    }
    return stream;
  }

  dropStream(id) {
    this.streams.get(id)?.renderer?.stop();
    this.streams.delete(id);
  }

  rendererOf(id, stream) {
    if (!stream.renderer) {
      const item = this.find(id);
      if (!item) return null;
      // A JSON answer is shown as the raw text while it streams, formatted once it ends.
      stream.renderer = new StreamRenderer(item.querySelector(".content"), {
        json: item.dataset.format === "json_object",
      });
    }
    return stream.renderer;
  }

  applyDelta(frame) {
    const stream = this.streams.get(frame.reply_id);
    if (!stream || stream.seq === null) return; // no base yet: the state frame brings it
    if (frame.seq <= stream.seq) return;
    stream.pending.set(frame.seq, frame.text);
    this.drain(frame.reply_id, stream);
  }

  applyState(frame) {
    const item = this.find(frame.reply_id);
    // The live state of a reply shown as ended came late: its end already holds it all.
    if (item && item.dataset.status !== "streaming") return;
    // A reply not shown (on another branch, or not announced yet) keeps its text for when
    // it is.
    const stream = this.streamOf(frame.reply_id);
    if (stream.seq !== null && frame.seq < stream.seq) return;
    stream.seq = frame.seq;
    stream.text = frame.content;
    const renderer = this.rendererOf(frame.reply_id, stream);
    renderer?.reset(frame.content);
    this.drain(frame.reply_id, stream);
  }

  drain(id, stream) {
    for (const seq of [...stream.pending.keys()]) if (seq <= stream.seq) stream.pending.delete(seq);
    let text = "";
    while (stream.pending.has(stream.seq + 1)) {
      stream.seq += 1;
      text += stream.pending.get(stream.seq);
      stream.pending.delete(stream.seq);
    }
    if (text) {
      stream.text += text;
      this.rendererOf(id, stream)?.append(text);
    }
  }

  // Frames from the socket.

  apply(frame) {
    switch (frame.type) {
      case "message.rated": {
        // 👍 / 👎 given in another tab (this tab's own comes back the same).
        const item = this.find(frame.message_id);
        if (item) this.showRating(item, frame.rating);
        break;
      }
      case "message.created":
      case "message.updated": {
        // A reply that starts, or goes on (Continue, `message.updated`): its deltas follow
        // the `seq` deltas its text holds.
        const message = frame.message;
        if (frame.type === "message.created" && !this.follow(message)) return;
        if (message.role === "assistant" && message.status === "streaming") {
          const stream = this.streamOf(message.id);
          if (stream.seq === null) {
            stream.seq = message.seq || 0;
            stream.text = message.content;
          }
        }
        this.upsert(message);
        if (message.role === "assistant" && message.status === "streaming") {
          const stream = this.streams.get(message.id);
          this.rendererOf(message.id, stream)?.reset(stream.text);
        }
        break;
      }
      case "reply.delta":
        this.applyDelta(frame);
        break;
      case "reply.state":
        this.applyState(frame);
        break;
      case "reply.ended":
        this.dropStream(frame.message.id);
        this.upsert(frame.message);
        this.dispatchEvent(new CustomEvent("ended", { detail: frame.message }));
        break;
      case "version.selected":
        // Another version chosen, here or in another tab: the path after the fork. One that
        // did not fit in the frame is the page's to show again.
        if (frame.from_id !== null) {
          window.location.reload();
          return;
        }
        this.sync(frame.messages, { after: frame.after_id, reconcile: true });
        return;
      default:
        return;
    }
    this.refresh();
  }

  // Catching up after (re)connecting: `subscribe`, answered by `sync` pages (docs/protocol.md).
  // First connection: only what is newer than the page. After a drop: everything shown, so
  // replies that ended, changed or were deleted meanwhile are brought up to date.
  subscribe(socket, reconnected) {
    const first = this.firstId();
    let after = this.lastId();
    if (reconnected) after = first === null ? null : first - 1;
    this.catchUp = { after, messages: [] };
    const frame = { type: "subscribe", after_id: after };
    if (this.lastSyncId) frame.ack = this.lastSyncId; // the last answer was read
    socket.send(frame);
  }

  // A `sync` page. Returns the messages of a catch-up once its last page is in, else null.
  acceptSync(frame) {
    if (!this.catchUp) {
      this.sync(frame.messages); // what a resent message stored the first time
      return null;
    }
    this.catchUp.messages.push(...frame.messages);
    if (!frame.done) return null;
    const { messages } = this.catchUp;
    let { after } = this.catchUp;
    this.catchUp = null;
    this.lastSyncId = frame.sync_id;
    if (frame.from_id !== null) {
      // Only the newest messages came. Shown ones older than them stay as they are; a gap
      // between what is shown and what came (many messages while away) needs the page again.
      const last = this.lastId();
      if (last !== null && last < frame.from_id) {
        window.location.reload();
        return null;
      }
      after = Math.max(after ?? 0, frame.from_id);
    }
    this.sync(messages, { after, reconcile: true });
    return messages;
  }

  // The answer to `subscribe`: every message of the active path after `after`, in order.
  // Anything shown after `after` that is not in it is on another branch now (a version was
  // chosen meanwhile, in another tab).
  sync(messages, { after = null, reconcile = false } = {}) {
    const ids = new Set(messages.map((m) => m.id));
    if (reconcile) {
      for (const item of this.items()) {
        const id = Number(item.dataset.id);
        if ((after === null || id > after) && !ids.has(id)) this.takeOff(item);
      }
    }
    for (const message of messages) {
      if (message.role === "assistant" && message.status === "streaming") {
        const stream = this.streamOf(message.id);
        if (stream.seq !== null) {
          // Live already: only make sure it exists; the text is ours, newer than the save.
          if (!this.find(message.id)) this.upsert(message);
          continue;
        }
      } else {
        this.dropStream(message.id);
      }
      this.upsert(message);
    }
    this.refresh();
  }

  // Markers the buttons and the context note depend on.
  refresh() {
    const items = [...this.items()];
    let lastUser = null;
    let latestReply = null;
    for (const item of items) {
      delete item.dataset.last;
      if (item.dataset.role === "user") lastUser = item;
      else latestReply = item;
    }
    for (const item of this.list.querySelectorAll("[data-last-user]")) delete item.dataset.lastUser;
    if (lastUser) lastUser.dataset.lastUser = "";
    if (items.length) items[items.length - 1].dataset.last = "";
    const contextFrom = latestReply ? Number(latestReply.dataset.contextFrom || 0) : 0;
    for (const item of items) {
      if (contextFrom && Number(item.dataset.id) < contextFrom) item.dataset.context = "excluded";
      else delete item.dataset.context;
    }
    const busy = Boolean(this.streaming());
    if (busy) this.list.dataset.busy = "";
    else delete this.list.dataset.busy;
    // Nothing is edited while a reply is on its way. The buttons stay where they are, dimmed:
    // had they gone, each answer's row of tools could lose a line on a phone, and the
    // conversation jump up under the reader.
    for (const button of this.list.querySelectorAll('.tool[data-action="edit"]')) button.disabled = busy;
    this.dispatchEvent(new CustomEvent("change"));
  }
}
