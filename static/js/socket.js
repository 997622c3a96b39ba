// The conversation's WebSocket, reconnecting by itself (docs/protocol.md, "Closing").
//
// After a drop it waits 0.5 s, 1 s, 2 s, … up to 15 s (with some jitter) and tries again, at
// once when the browser says it is back online. Each time it is open again the page sends
// `subscribe` and catches up.
//
// It stops trying (state `closed`) where trying again cannot help:
// - the server refused the socket (a 44xx code: not logged in, not found, too many sockets);
//   the `error` frame it sent just before closing says why, in the user's language;
// - the server closed it with an error (1011 its own failure, 1009 a frame too big, …)
//   FAILURES_TO_STOP times in a row, with no socket in between that lived past HEALTHY_AFTER:
//   each new socket met the same failure, and would for ever.
// A network drop or a server going away (1006, 1001, 1012, …) never stops it. `retry()`
// starts again, for a person who pressed Reconnect.

const MIN_DELAY = 500;
const MAX_DELAY = 15000;
const FAILURES_TO_STOP = 3;
// A socket that was ready this long showed the server works: a failure after it counts anew.
const HEALTHY_AFTER = 30000;
// The network went away, or the server is restarting: worth waiting for.
const DROP_CODES = new Set([1000, 1001, 1005, 1006, 1012, 1013]);

const isRefusal = (code) => code >= 4400 && code < 4500;

// The sentence for a socket that stopped: the server's own, else one of the page's per code.
export function closedReason({ code, message }, strings) {
  if (message) return message;
  const byCode = {
    4401: strings.notAuthenticated,
    4404: strings.notFound,
    4429: strings.tooManySockets,
    1009: strings.frameTooLarge,
    1011: strings.serverFailed,
  };
  return byCode[code] || (isRefusal(code) ? strings.refused : strings.connectionFailed);
}

export class ChatSocket extends EventTarget {
  constructor(path) {
    super();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = `${scheme}//${location.host}${path}`;
    this.attempt = 0;
    this.failures = 0;
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
    let readyAt = null;
    let refusal = ""; // an `error` frame before `ready`: why the server is about to close
    ws.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "ready") {
        readyAt = Date.now();
        this.attempt = 0;
        this.setState("open");
      } else if (frame.type === "error" && readyAt === null) {
        refusal = frame.message || "";
        return; // told with the `closed` state, not as a frame
      }
      this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const code = event.code;
      if (isRefusal(code)) {
        this.stop(code, refusal);
        return;
      }
      if (!DROP_CODES.has(code)) {
        const healthy = readyAt !== null && Date.now() - readyAt >= HEALTHY_AFTER;
        this.failures = healthy ? 1 : this.failures + 1;
        if (this.failures >= FAILURES_TO_STOP) {
          this.stop(code, refusal);
          return;
        }
      } else if (readyAt !== null) {
        this.failures = 0;
      }
      this.scheduleReconnect();
    });
  }

  stop(code, message) {
    this.closedForGood = true;
    this.setState("closed", { code, message });
  }

  retry() {
    this.closedForGood = false;
    this.failures = 0;
    this.attempt = 0;
    if (!this.ws) this.connect();
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
