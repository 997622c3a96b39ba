// The compare page: one column per conversation, each with its own socket and message list,
// streaming side by side (docs/protocol.md). The replies were started together by the server;
// the columns only show them, catch up after a drop, and can stop them.

import { config, strings } from "./page.js";
import { MessageList } from "./messages.js";
import { ChatSocket, closedReason } from "./socket.js";
import { format } from "./dom.js";

class Column {
  constructor(section, { socketPath, personaEmoji }, onState) {
    this.list = new MessageList(section.querySelector(".messages"), {
      strings,
      emoji: personaEmoji,
      language: document.documentElement.lang,
    });
    this.stopButton = section.querySelector(".column-stop");
    this.socket = new ChatSocket(socketPath);
    this.connectedBefore = false;
    this.list.addEventListener("change", () => {
      this.stopButton.hidden = !this.list.streaming();
    });
    this.stopButton.hidden = !this.list.streaming();
    this.stopButton.addEventListener("click", () => this.stop());
    this.socket.addEventListener("state", (event) => onState(this, event.detail));
    this.socket.addEventListener("frame", (event) => this.apply(event.detail));
    this.socket.connect();
  }

  apply(frame) {
    switch (frame.type) {
      case "ready":
        this.list.subscribe(this.socket, this.connectedBefore);
        this.connectedBefore = true;
        break;
      case "sync":
        this.list.acceptSync(frame);
        break;
      case "conversation.updated":
      case "error":
        break;
      default:
        this.list.apply(frame);
    }
  }

  stop() {
    const streaming = this.list.streaming();
    if (streaming) this.socket.send({ type: "reply.stop", reply_id: Number(streaming.dataset.id) });
  }
}

const status = document.getElementById("connection-status");
const states = new Map();
const showState = (column, detail) => {
  states.set(column, detail);
  if (!status) return;
  const waiting = [...states.values()].find((s) => s.state !== "open");
  status.dataset.state = waiting ? waiting.state : "open";
  if (!waiting) status.textContent = "";
  else if (waiting.state === "waiting") status.textContent = format(strings.reconnectingIn, { seconds: waiting.seconds });
  else if (waiting.state === "closed") status.textContent = closedReason(waiting, strings);
  else status.textContent = strings.connecting;
};

const sections = document.querySelectorAll(".compare-column");
const columns = [];
(config.columns || []).forEach((column, i) => {
  if (!sections[i]) return;
  const view = new Column(sections[i], column, showState);
  states.set(view, { state: "connecting" });
  columns.push(view);
});
if (status && !columns.length) status.dataset.state = "open";

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || event.defaultPrevented) return;
  if (document.querySelector("dialog[open]") || document.querySelector(".sidebar.open")) return;
  for (const column of columns) column.stop();
});

document.documentElement.dataset.ready = "";
