// Behaviour every page shares: the language switcher applies the choice at once; the keyboard
// shortcuts (shortcuts.js).

import { setupShortcuts } from "./shortcuts.js";

setupShortcuts();

for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.form.classList.add("autosubmit");
  select.addEventListener("change", () => select.form.requestSubmit());
}

// Message bars ("Imported", "Deleted") fade on their own; an error stays until the next page.
const FLASH_MS = 8000; // long enough to read on a slow device, short enough not to linger
for (const bar of document.querySelectorAll(".flash")) {
  const items = bar.querySelectorAll("li:not(.flash-error)");
  if (!items.length) continue;
  setTimeout(() => {
    for (const item of items) item.classList.add("fading");
    // The fade is a CSS transition (none with reduced motion): remove once it has run.
    setTimeout(() => {
      for (const item of items) item.remove();
      if (!bar.querySelector("li")) bar.remove();
    }, 600);
  }, FLASH_MS);
}
