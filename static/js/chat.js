// The chat page: wires the socket, the message list, the composer and the scroller together.
// Data comes from the page through json_script (#chat-config, #chat-strings); see
// docs/protocol.md for the frames.

import "./common.js";
import { Attachments, PickedFiles } from "./attachments.js";
import { Composer } from "./composer.js";
import { takeEarlyEnter } from "./early-enter.js";
import { setupConfidence } from "./confidence.js";
import { MessageList } from "./messages.js";
import { setupModelPicker } from "./models.js";
import { setStrings } from "./render.js";
import { Scroller } from "./scroll.js";
import { setupReadAloud } from "./speech.js";
import { setupPersonaPicker, setupSettings, setupSidebar } from "./sidebar.js";
import { ChatSocket, closedReason } from "./socket.js";
import { ConversationUsage } from "./usage.js";
import { format, postForJson } from "./dom.js";

const strings = JSON.parse(document.getElementById("chat-strings").textContent);
const config = JSON.parse(document.getElementById("chat-config").textContent);
setStrings(strings);
setupReadAloud(strings);
setupConfidence(strings);
setupSidebar(strings);
setupSettings(strings);
setupPersonaPicker();
setupModelPicker(strings);

function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

if (config.conversationId) startChat();
else startNewChat();
document.documentElement.dataset.ready = "";

// The new-chat page: the first message and its files go with the form; the conversation page
// sends it.
function startNewChat() {
  const form = document.getElementById("new-chat-form");
  if (!form) return;
  const errorBox = document.getElementById("chat-error");
  const showError = (text) => {
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  };
  const composer = new Composer(form, { draftKey: "draft:new", maxChars: config.maxMessageChars, strings });
  // Here an image is refused for the chosen persona's model, which the cards tell.
  const imagesNotAccepted = strings.personaImagesNotAccepted;
  const files = new PickedFiles(form, { strings: { ...strings, imagesNotAccepted }, showError });
  composer.canSendEmpty = () => files.files.length > 0;
  const select = form.querySelector(".persona-select");
  const followPersona = () => {
    const card = select && form.querySelector(`.persona-card[data-persona="${select.value}"]`);
    if (card) form.dataset.acceptsImages = card.dataset.acceptsImages;
  };
  select?.addEventListener("change", () => {
    followPersona();
    const problem = files.problem();
    if (problem || errorBox.textContent === imagesNotAccepted) showError(problem);
  });
  window.addEventListener("pageshow", followPersona);
  followPersona();
  // Posted with fetch: refused (a file the server cannot read, say), the page stays as it is,
  // every file picked still in the tray, and says why; started, it opens the conversation.
  let starting = false;
  composer.addEventListener("send", async () => {
    const problem = files.problem();
    if (problem) {
      showError(problem);
      return;
    }
    if (starting) return;
    starting = true;
    form.setAttribute("aria-busy", "true");
    const { url, error } = await startConversation(form, strings);
    starting = false;
    form.removeAttribute("aria-busy");
    if (error) {
      showError(error);
      composer.focus();
      return;
    }
    sessionStorage.removeItem("draft:new");
    window.location.assign(url);
  });
  if (takeEarlyEnter()) composer.submit();
  composer.focus();
}

// The new-chat form posted: {url} of the conversation started, or {error}, a sentence.
async function startConversation(form, strings) {
  try {
    const { ok, data } = await postForJson(form.action, new FormData(form));
    if (ok && data.url) return { url: data.url };
    const errors = Object.values(data.errors || {}).flat();
    return { error: errors.map((e) => e.message).join(" ") || strings.newChatFailed };
  } catch {
    return { error: strings.newChatFailed };
  }
}

function startChat() {
  const id = config.conversationId;
  const errorBox = document.getElementById("chat-error");
  const status = document.getElementById("connection-status");
  const reconnectButton = document.getElementById("reconnect-button");
  const stopButton = document.getElementById("stop-button");
  const sendButton = document.getElementById("send-button");
  const regenerateButton = document.getElementById("regenerate-button");
  const list = new MessageList(document.getElementById("messages"), {
    strings,
    emoji: config.personaEmoji,
    language: document.documentElement.lang,
  });
  const usage = new ConversationUsage(list, { strings, language: document.documentElement.lang });
  const composer = new Composer(document.getElementById("composer"), {
    draftKey: `draft:${id}`,
    maxChars: config.maxMessageChars,
    strings,
  });
  const attachments = new Attachments(document.getElementById("composer"), { strings, showError: (text) => showError(text) });
  composer.canSendEmpty = () => attachments.ids.length > 0;
  const socket = new ChatSocket(config.socketPath);
  const scroller = new Scroller(document.getElementById("scroller"), {
    jumpButton: document.getElementById("jump-to-bottom"),
    older: document.getElementById("older"),
    olderButton: document.getElementById("load-older"),
    loadOlder,
  });

  // A message sent but not yet stored by the server; sent again (same client id, so stored
  // once) after a reconnect.
  const pendingKey = `pending:${id}`;
  let pending = JSON.parse(sessionStorage.getItem(pendingKey) || "null");
  if (!pending && config.pending) {
    pending = { type: "message.send", client_id: config.pending.client_id, content: config.pending.content };
    // The new-chat page's files: named in the frame, and in the tray until it is stored.
    if (config.pending.attachments?.length) pending.attachments = config.pending.attachments;
    if (config.pending.files?.length) attachments.show(config.pending.files);
  }
  const setPending = (frame) => {
    pending = frame;
    if (frame) sessionStorage.setItem(pendingKey, JSON.stringify(frame));
    else sessionStorage.removeItem(pendingKey);
  };
  setPending(pending);
  let connectedBefore = false;
  let sendOnOpen = false;

  const showError = (text) => {
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  };

  const updateButtons = () => {
    const busy = Boolean(list.streaming());
    stopButton.hidden = !busy;
    sendButton.hidden = busy;
    const items = list.items();
    const last = items[items.length - 1];
    // After an answer: another one beside it. After a question left unanswered (a branch
    // made from it): its answer.
    regenerateButton.hidden = busy || !last || !["assistant", "user"].includes(last.dataset.role);
    document.getElementById("empty-chat")?.toggleAttribute("hidden", items.length > 0);
  };
  list.addEventListener("change", updateButtons);
  updateButtons();

  list.addEventListener("stored", (event) => {
    if (pending && event.detail.clientId === pending.client_id) {
      if (pending.attachments?.length) attachments.clear();
      setPending(null);
      showError("");
    }
  });

  // The socket.

  // A socket that stopped trying says why, beside a button that tries again.
  socket.addEventListener("state", (event) => {
    const { state, seconds } = event.detail;
    status.dataset.state = state;
    if (state === "open") status.textContent = "";
    else if (state === "waiting") status.textContent = format(strings.reconnectingIn, { seconds });
    else if (state === "connecting") status.textContent = status.dataset.seen ? strings.reconnecting : strings.connecting;
    else if (state === "closed") status.textContent = closedReason(event.detail, strings);
    if (state === "open") status.dataset.seen = "1";
    // Back online: "you are offline" no longer holds (what was typed is still in the box).
    if (state === "open" && errorBox.textContent === strings.offlineKept) showError("");
    reconnectButton.hidden = state !== "closed";
    // A message sent while the page's first connection was being made goes once it is open;
    // if that connection fails instead, it stays in the box and the status says why.
    if (state !== "connecting" && sendOnOpen) {
      sendOnOpen = false;
      if (state === "open") composer.submit();
    }
  });
  reconnectButton.addEventListener("click", () => socket.retry());

  socket.addEventListener("frame", (event) => {
    const frame = event.detail;
    switch (frame.type) {
      case "ready":
        list.subscribe(socket, connectedBefore);
        connectedBefore = true;
        break;
      case "sync": {
        const messages = list.acceptSync(frame);
        if (messages && pending && !messages.some((m) => m.client_id === pending.client_id)) {
          socket.send(pending);
        }
        break;
      }
      case "conversation.updated":
        updateConversation(frame.conversation);
        break;
      case "error":
        if (pending && frame.client_id === pending.client_id) {
          if (!composer.value.trim()) composer.value = pending.content;
          setPending(null);
        }
        showError(frame.message);
        break;
      default:
        list.apply(frame);
    }
  });
  socket.connect();

  // A conversation renamed, pinned or archived (in any of the user's tabs), titled, or back
  // from the archive by a message: this page's heading and note when it is this one, and its
  // item in the sidebar, whichever it is: the text, the menu's name, the rename box (unless
  // being typed in), the delete dialog's question, the marks and what the menu's buttons
  // would do next. (The model's title names neither mark.)
  function updateConversation(conversation) {
    const own = conversation.id === id;
    const item = document.querySelector(`.conversation-item[data-conversation-id="${conversation.id}"]`);
    if (movesInTheList(item, conversation, own)) {
      document.dispatchEvent(new CustomEvent("conversation-moved"));
    }
    if (own && conversation.title) {
      document.getElementById("chat-title").textContent = conversation.title;
      document.title = conversation.title;
    }
    if (own && typeof conversation.archived === "boolean") {
      document.getElementById("archived-note").hidden = !conversation.archived;
    }
    if (!item) return;
    if (conversation.title) renameItem(item, conversation.title);
    const marks = [
      ["archived", ".archived-mark", '[name="archived"]', "[data-archive-button]"],
      ["pinned", ".pin-mark", '[name="pinned"]', "[data-pin-button]"],
    ];
    for (const [key, mark, input, button] of marks) {
      if (typeof conversation[key] !== "boolean") continue;
      const on = conversation[key];
      item.querySelector(mark).hidden = !on;
      item.querySelector(input).disabled = on;
      const next = item.querySelector(button);
      next.textContent = on ? next.dataset.on : next.dataset.off;
      if (key === "pinned") item.toggleAttribute("data-pinned", on);
    }
  }

  // Whether the sidebar's list places the conversation elsewhere now: out of it when
  // archived, to the pinned ones or away from them, into it when back from the archive or
  // newly titled by its first message (a conversation not listed yet: no frame comes for one
  // but a change). This page's own one is not listed while archived: the note says when.
  function movesInTheList(item, conversation, own) {
    if (!item) {
      if (conversation.archived !== false) return false;
      return !own || !document.getElementById("archived-note").hidden;
    }
    const archived = !item.querySelector(".archived-mark").hidden;
    const pinned = item.hasAttribute("data-pinned");
    return (
      (typeof conversation.archived === "boolean" && conversation.archived !== archived) ||
      (typeof conversation.pinned === "boolean" && conversation.pinned !== pinned)
    );
  }

  function renameItem(item, title) {
    const shown = item.querySelector("[data-title]");
    const before = shown.textContent;
    shown.textContent = title;
    const summary = item.querySelector(".item-menu summary");
    if (summary && before) summary.setAttribute("aria-label", summary.getAttribute("aria-label").replace(before, title));
    const rename = item.querySelector('input[name="title"]');
    if (rename && document.activeElement !== rename) rename.value = title;
    const remove = item.querySelector("[data-delete-title]");
    if (remove) remove.dataset.deleteTitle = title;
  }

  // Actions.

  const sendFrame = (frame) => {
    showError("");
    if (!socket.send(frame)) {
      showError(strings.offlineKept);
      return false;
    }
    return true;
  };

  composer.addEventListener("send", (event) => {
    if (!socket.isOpen) {
      if (!connectedBefore && socket.state === "connecting") {
        // The page has just opened and its socket is on its way: not offline. The message is
        // sent as soon as the socket is open (it stays in the box until then).
        sendOnOpen = true;
        return;
      }
      showError(strings.offlineKept);
      return;
    }
    const problem = attachments.problem();
    if (problem) {
      showError(problem);
      return;
    }
    const frame = { type: "message.send", client_id: newClientId(), content: event.detail.text };
    // The files stay in the tray until the message is stored; refused, they can be sent again.
    if (attachments.ids.length) frame.attachments = attachments.ids;
    setPending(frame);
    composer.value = "";
    sendFrame(frame);
    scroller.toBottom();
  });

  const stop = () => {
    const streaming = list.streaming();
    if (streaming) sendFrame({ type: "reply.stop", reply_id: Number(streaming.dataset.id) });
  };
  stopButton.addEventListener("click", stop);
  const regenerate = () => {
    if (sendFrame({ type: "reply.regenerate", client_id: newClientId() })) scroller.toBottom();
  };
  regenerateButton.addEventListener("click", regenerate);

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    if (document.querySelector("dialog[open]") || document.querySelector(".sidebar.open")) return;
    if (list.streaming()) {
      event.preventDefault();
      stop();
    }
  });

  list.list.addEventListener("click", (event) => {
    const step = event.target.closest("button[data-step]");
    if (step) {
      // `‹ K / N ›`: the server saves the choice and every tab shows the new path.
      const item = step.closest(".message");
      const [version] = item.dataset.version.split("/").map(Number);
      sendFrame({ type: "version.select", message_id: Number(item.dataset.id), version: version + Number(step.dataset.step) });
      return;
    }
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const action = button.dataset.action;
    if (action === "retry") regenerate();
    else if (action === "continue") sendFrame({ type: "reply.continue", client_id: newClientId() });
    else if (action === "edit") startEdit(button.closest(".message"));
    else if (action === "branch") branchFrom(button.closest(".message"));
    else if (action === "rate") rate(button);
  });

  // 👍 / 👎: pressing the rating given takes it back. Shown at once, put back if not saved.
  async function rate(button) {
    const item = button.closest(".message");
    const before = item.querySelector('.tool[data-action="rate"][aria-pressed="true"]')?.dataset.rating || "";
    const rating = before === button.dataset.rating ? "" : button.dataset.rating;
    list.showRating(item, rating);
    const form = document.getElementById("branch-form");
    const body = new FormData();
    body.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    body.append("rating", rating);
    const url = config.rateUrl.replace(/\/0\/rating\/$/, `/${Number(item.dataset.id)}/rating/`);
    try {
      const { ok } = await postForJson(url, body);
      if (!ok) throw new Error("refused");
    } catch {
      list.showRating(item, before);
      showError(strings.ratingFailed);
    }
  }

  // A new conversation holding the path up to a message, with the same settings.
  function branchFrom(item) {
    const form = document.getElementById("branch-form");
    form.action = config.branchUrl.replace(/\/0\/branch\/$/, `/${Number(item.dataset.id)}/branch/`);
    form.submit();
  }

  // Edit a message in place: the new text becomes a version beside it, answered anew; an
  // answer the user rewrites becomes a version beside the model's, and no model is asked.
  function startEdit(item) {
    if (!item || item.querySelector(".edit-form")) return;
    const content = item.querySelector(".content");
    const form = document.createElement("form");
    form.className = "edit-form";
    // An answer is edited as the markdown the model wrote, and saved without asking the model.
    const answer = item.dataset.role === "assistant";
    const area = document.createElement("textarea");
    area.value = answer ? item.querySelector("template.source").content.textContent : content.textContent;
    area.setAttribute("aria-label", answer ? strings.editAnswer : strings.editMessage);
    area.rows = answer ? 10 : 3;
    const save = document.createElement("button");
    save.type = "submit";
    save.textContent = answer ? strings.save : strings.saveAndSend;
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "secondary";
    cancel.textContent = strings.cancel;
    const buttons = document.createElement("div");
    buttons.className = "edit-buttons";
    buttons.append(cancel, save);
    form.append(area, buttons);
    content.hidden = true;
    content.after(form);
    item.classList.add("editing");
    area.focus();
    const close = () => {
      form.remove();
      content.hidden = false;
      item.classList.remove("editing");
    };
    cancel.addEventListener("click", close);
    const composition = { active: false };
    area.addEventListener("compositionstart", () => (composition.active = true));
    area.addEventListener("compositionend", () => setTimeout(() => (composition.active = false), 0));
    area.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        close();
      } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !composition.active && event.keyCode !== 229) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = area.value.trim();
      if (!text) return;
      const sent = sendFrame(
        answer
          ? { type: "answer.edit", message_id: Number(item.dataset.id), content: text }
          : { type: "message.edit", client_id: newClientId(), message_id: Number(item.dataset.id), content: text },
      );
      if (sent) close();
    });
  }

  async function loadOlder() {
    const first = list.firstId();
    if (first === null) return false;
    const params = new URLSearchParams({ before: String(first) });
    const replies = list.list.querySelectorAll(':scope > .message[data-role="assistant"]');
    const latest = replies[replies.length - 1];
    if (latest && latest.dataset.contextFrom) params.set("context_from", latest.dataset.contextFrom);
    try {
      const response = await fetch(`${config.olderUrl}?${params}`, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(String(response.status));
      const data = await response.json();
      list.prependHtml(data.html); // their tokens were counted already (usage.js)
      return data.has_older;
    } catch {
      showError(strings.loadFailed);
      return true;
    }
  }

  if (takeEarlyEnter()) composer.submit();
  composer.focus();
}
