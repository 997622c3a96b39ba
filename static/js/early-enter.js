// An Enter in the message box before the page's script is ready (its modules still loading,
// seconds on a slow network) would only break the line, and the user would wonder why nothing
// was sent. Loaded ahead of the page's script, this small module holds such an Enter; the page
// sends the message once it is ready (`takeEarlyEnter`). Shift+Enter and an Enter that ends an
// IME composition keep their meaning, as in the composer.

import { isComposing, trackComposition } from "./composer.js";

const box = document.getElementById("message-input");
const composition = box ? trackComposition(box) : null;
let pressed = false;

function hold(event) {
  if (event.key !== "Enter" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return;
  if (isComposing(event, composition)) return;
  event.preventDefault();
  pressed = true;
}

box?.addEventListener("keydown", hold);
document.documentElement.dataset.earlyEnter = "";

// The composer takes over the box: whether an Enter was held until now.
export function takeEarlyEnter() {
  box?.removeEventListener("keydown", hold);
  const was = pressed;
  pressed = false;
  return was;
}
