// Behaviour every page shares: the language switcher applies the choice at once; the keyboard
// shortcuts (shortcuts.js).

import { setupShortcuts } from "./shortcuts.js";

setupShortcuts();

for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.form.classList.add("autosubmit");
  select.addEventListener("change", () => select.form.requestSubmit());
}
