// The conversation's WebSocket, reconnecting by itself (docs/protocol.md).
//
// After a drop it waits 0.5 s, 1 s, 2 s, … up to 15 s (with some jitter) and tries again, at
// once when the browser says it is back online. Each time it is open again the page sends
// `subscribe` and catches up. A refusal (not logged in, not found) is final.

const MIN_DELAY = 500;
const MAX_DELAY = 15000;
const FINAL_CODES = new Set([4401, 4404]);

export class ChatSocket extends EventTarget {
  constructor(path) {
    super();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = `${scheme}//${location.host}${path}`;
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.closedForGood = false;
    this.state = "connecting";
    window.addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.state === "open";
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    this.setState("connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "ready") {
        this.attempt = 0;
        this.setState("open");
      }
      this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (FINAL_CODES.has(event.code)) {
        this.closedForGood = true;
        this.setState("closed", { code: event.code });
        return;
      }
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    if (this.closedForGood || this.timer) return;
    const delay = Math.min(MAX_DELAY, MIN_DELAY * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    this.setState("waiting", { seconds: Math.ceil(delay / 1000) });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.closedForGood || this.ws) return;
    this.connect();
  }

  setState(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...detail } }));
  }

  send(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }
}
