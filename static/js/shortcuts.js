// Keyboard shortcuts as ChatGPT users know them, listed in the help dialog that `?` (typed
// outside a text field) or the sidebar's `?` button opens (#shortcuts-dialog, a <dialog>):
//   Ctrl+Shift+O  new chat
//   Ctrl+K, or /  focus the conversation search (`/` outside a text field)
//   Ctrl+Shift+C  copy the last answer (as its Copy button does)
// Cmd stands for Ctrl on a Mac.

function typing(target) {
  return Boolean(
    target && target.closest && target.closest("input, textarea, select, [contenteditable]:not([contenteditable=false])"),
  );
}

function focusSearch() {
  const sidebar = document.getElementById("sidebar");
  const input = sidebar?.querySelector("input[type=search]");
  if (!input) return false;
  const toggle = document.querySelector("[data-sidebar-open]");
  // On a phone the sidebar slides in first (and focuses the search itself).
  if (toggle && toggle.getClientRects().length && !sidebar.classList.contains("open")) toggle.click();
  else {
    input.focus();
    input.select();
  }
  return true;
}

function newChat() {
  const link = document.querySelector("a.new-chat");
  if (!link) return false;
  location.assign(link.href);
  return true;
}

function copyLastAnswer() {
  const answers = document.querySelectorAll('.message[data-role="assistant"]');
  const button = answers[answers.length - 1]?.querySelector('.tool[data-action="copy"]');
  if (!button) return false;
  button.click();
  return true;
}

function openHelp() {
  const dialog = document.getElementById("shortcuts-dialog");
  if (!dialog || dialog.open || document.querySelector("dialog[open]")) return false;
  dialog.showModal();
  return true;
}

export function setupShortcuts() {
  if (/Mac|iPhone|iPad/.test(navigator.platform)) {
    for (const key of document.querySelectorAll("kbd[data-mod]")) key.textContent = "⌘";
  }
  for (const button of document.querySelectorAll("[data-shortcuts-open]")) {
    button.addEventListener("click", openHelp);
  }
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.isComposing || event.altKey) return;
    const mod = event.ctrlKey || event.metaKey;
    const key = event.key.toLowerCase();
    let done = false;
    if (mod && event.shiftKey && key === "o") done = newChat();
    else if (mod && event.shiftKey && key === "c") done = copyLastAnswer();
    else if (mod && !event.shiftKey && key === "k") done = focusSearch();
    else if (!mod && !typing(event.target) && !document.querySelector("dialog[open]")) {
      if (event.key === "/") done = focusSearch();
      else if (event.key === "?") done = openHelp();
    }
    if (done) event.preventDefault();
  });
}
