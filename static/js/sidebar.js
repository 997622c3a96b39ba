// The sidebar: search as you type, delete with a confirmation dialog, and on a phone the
// menu that slides it in.

import { format, postForJson } from "./dom.js";

function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function setupSidebar(strings) {
  const sidebar = document.getElementById("sidebar");
  if (!sidebar) return;
  // New chat is a link shown as a button: Space presses it, as it would a button.
  sidebar.querySelector("a.new-chat")?.addEventListener("keydown", (event) => {
    if (event.key !== " ") return;
    event.preventDefault();
    event.currentTarget.click();
  });
  const backdrop = document.querySelector(".sidebar-backdrop");
  const toggles = document.querySelectorAll("[data-sidebar-open]");
  const setOpen = (open) => {
    sidebar.classList.toggle("open", open);
    if (backdrop) backdrop.hidden = !open;
    for (const toggle of toggles) toggle.setAttribute("aria-expanded", String(open));
    // After the style change has applied: a hidden (visibility) element cannot take focus.
    if (open) requestAnimationFrame(() => sidebar.querySelector("input[type=search]")?.focus());
    else document.querySelector("[data-sidebar-open]")?.focus();
  };
  for (const toggle of toggles) toggle.addEventListener("click", () => setOpen(true));
  for (const close of document.querySelectorAll("[data-sidebar-close]")) {
    close.addEventListener("click", () => setOpen(false));
  }
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !event.defaultPrevented && sidebar.classList.contains("open")) setOpen(false);
  });

  // Search as one types: the server filters titles and message text.
  const search = sidebar.querySelector("form.search");
  const nav = document.getElementById("conversation-nav");
  if (search && nav) {
    const input = search.querySelector("input[type=search]");
    // The list on the page matches `data-query`; typing may have started before this ran.
    let last = search.dataset.query || "";
    // Only the list last asked for is shown: answers to a search typed on, or to two moves
    // in a row, can arrive out of order.
    let asked = 0;
    const load = async (query) => {
      const ask = ++asked;
      // `page`: the list's Rename and Pin come back to this page, not to the list alone.
      const params = new URLSearchParams({
        q: query,
        current: search.dataset.current || "",
        page: location.pathname + location.search,
      });
      const response = await fetch(`${search.dataset.listUrl}?${params}`, {
        headers: { Accept: "text/html" },
      });
      if (!response.ok) return;
      const html = await response.text();
      if (ask === asked && input.value.trim() === query) {
        nav.innerHTML = html;
        nav.dataset.query = query;
      }
    };
    const run = debounce(async () => {
      const query = input.value.trim();
      if (query === last) return;
      last = query;
      await load(query);
    }, 200);
    // A conversation archived, pinned or back from the archive in another tab moves in the
    // list (chat.js says so): the list is read again, as a reload would show it. Not under an
    // open menu, which would close in the user's hands: when it closes.
    let stale = false;
    const reload = () => {
      stale = Boolean(sidebar.querySelector("details.item-menu[open]"));
      if (!stale) load(last);
    };
    document.addEventListener("conversation-moved", reload);
    sidebar.addEventListener("toggle", (event) => {
      if (stale && event.target.matches?.("details.item-menu") && !event.target.open) reload();
    }, true);
    input.addEventListener("input", run);
    if (input.value.trim() !== last) run();
    search.addEventListener("submit", (event) => {
      event.preventDefault();
      run();
    });
  }

  // Only one conversation menu open at a time.
  sidebar.addEventListener("toggle", (event) => {
    if (event.target.matches?.("details.item-menu") && event.target.open) {
      for (const other of sidebar.querySelectorAll("details.item-menu[open]")) {
        if (other !== event.target) other.open = false;
      }
      event.target.querySelector("input[name=title]")?.focus();
    }
  }, true);
  // An open menu closes on Escape (back to its ⋯ button) and on a click anywhere else.
  // Before the page's own Escape (which stops a reply, closes the sidebar on a phone).
  document.addEventListener("keydown", (event) => {
    const open = event.key === "Escape" && sidebar.querySelector("details.item-menu[open]");
    if (!open) return;
    event.preventDefault();
    open.open = false;
    open.querySelector("summary").focus();
  }, true);
  document.addEventListener("click", (event) => {
    for (const open of sidebar.querySelectorAll("details.item-menu[open]")) {
      if (!open.contains(event.target)) open.open = false;
    }
  });

  // Delete: confirm in a dialog instead of the confirmation page.
  const dialog = document.getElementById("delete-dialog");
  if (dialog && typeof dialog.showModal === "function") {
    document.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-delete-url]");
      if (!link) return;
      event.preventDefault();
      dialog.querySelector("form").action = link.dataset.deleteUrl;
      dialog.querySelector("p").textContent = format(strings.deleteConfirm, {
        title: link.dataset.deleteTitle,
      });
      dialog.showModal();
      dialog.querySelector("[data-dialog-cancel]").focus();
    });
    dialog.querySelector("[data-dialog-cancel]").addEventListener("click", () => dialog.close());
  }
}

// The settings panel: open and close, the temperature slider's value as it moves, and saving
// in place (the panel stays open; the form's errors appear beside their fields).
export function setupSettings(strings = {}) {
  const panel = document.getElementById("settings-panel");
  const toggle = document.getElementById("settings-toggle");
  if (!panel || !toggle) return;
  const setOpen = (open) => {
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) panel.querySelector("textarea, input, button")?.focus();
    else toggle.focus();
  };
  toggle.addEventListener("click", () => setOpen(panel.hidden));
  panel.querySelector("[data-settings-close]")?.addEventListener("click", () => setOpen(false));
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      setOpen(false);
    }
  });
  const range = panel.querySelector("input[type=range]");
  const output = document.getElementById("temperature-value");
  if (range && output) {
    const show = () => {
      output.textContent = Number(range.value).toFixed(1);
    };
    range.addEventListener("input", show);
    show();
  }
  const form = panel.querySelector("form.settings-form");
  if (form) saveInPlace(form, panel.querySelector(".settings-saved"), strings);
}

const FADE_AFTER_MS = 3000;
const FADE_MS = 600;

// Without JavaScript the form posts and the page reloads; with it, the same POST goes by fetch
// and the view answers JSON: {message} when saved, {errors: {field: [{message}]}} when not.
function saveInPlace(form, saved, strings) {
  const button = form.querySelector("button[type=submit]");
  let fadeTimer;
  const confirm = (text) => {
    if (!saved) return;
    clearTimeout(fadeTimer);
    saved.classList.remove("fading");
    saved.textContent = text;
    fadeTimer = setTimeout(() => {
      saved.classList.add("fading");
      fadeTimer = setTimeout(() => {
        saved.textContent = "";
        saved.classList.remove("fading");
      }, FADE_MS);
    }, FADE_AFTER_MS);
  };
  // Busy while saving, but not `disabled`: a disabled button loses the focus (to the page),
  // and with it the panel's Escape and the way back with Tab.
  let saving = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (saving) return;
    saving = true;
    button.setAttribute("aria-disabled", "true");
    confirm("");
    try {
      const { ok, data } = await postForJson(form.action, new FormData(form));
      if (ok) {
        showErrors(form, {});
        confirm(data.message || "");
      } else {
        showErrors(form, data.errors || { __all__: [{ message: strings.settingsFailed }] });
      }
    } catch {
      showErrors(form, { __all__: [{ message: strings.settingsFailed }] });
    } finally {
      saving = false;
      button.removeAttribute("aria-disabled");
    }
  });
}

function errorList(errors) {
  const list = document.createElement("ul");
  list.className = "errorlist";
  for (const error of errors) {
    const item = document.createElement("li");
    item.textContent = error.message;
    list.append(item);
  }
  return list;
}

function showErrors(form, errors) {
  for (const list of form.querySelectorAll(".errorlist")) list.remove();
  for (const field of form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
  let first = null;
  for (const [name, fieldErrors] of Object.entries(errors)) {
    const list = errorList(fieldErrors);
    const input = name === "__all__" ? null : form.elements.namedItem(name);
    const box = input?.closest?.(".field");
    if (box) {
      box.append(list);
      input.setAttribute("aria-invalid", "true");
      first ??= input;
    } else {
      list.classList.add("nonfield");
      form.prepend(list);
    }
  }
  first?.focus();
}

// The new-chat page. The persona cards are radio buttons (Tab reaches the chosen one, the
// arrow keys choose another); the visually hidden select is what the form sends and what a
// script drives: each follows the other. The chosen persona's example prompts are shown; one
// clicked is sent at once, as ChatGPT's suggestions are.
export function setupPersonaPicker() {
  const select = document.querySelector(".persona-select");
  if (!select) return;
  const radios = document.querySelectorAll(".persona-radio");
  const examples = document.querySelectorAll(".example-prompts");
  const show = () => {
    for (const radio of radios) radio.checked = radio.value === select.value;
    for (const box of examples) box.hidden = box.dataset.persona !== select.value;
  };
  for (const radio of radios) {
    radio.addEventListener("change", () => {
      if (!radio.checked) return;
      select.value = radio.value;
      select.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }
  select.addEventListener("change", show);
  // A reload or Back may bring the select back with the browser's remembered choice.
  window.addEventListener("pageshow", show);
  show();
  for (const button of document.querySelectorAll(".example-prompt")) {
    button.addEventListener("click", () => {
      const form = button.form;
      const textarea = form?.querySelector("textarea");
      if (!textarea) return;
      textarea.value = button.dataset.prompt;
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
      form.requestSubmit();
    });
  }
}
