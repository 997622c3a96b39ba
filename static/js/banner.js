// The demo mode notice: ✕ dismisses it, and a cookie remembers that for a year, so the server
// leaves it out of the next pages (no notice that flashes up before a script hides it).

const YEAR_SECONDS = 365 * 24 * 60 * 60;

for (const button of document.querySelectorAll("[data-demo-dismiss]")) {
  button.addEventListener("click", () => {
    document.cookie = `${button.dataset.cookie}=dismissed; path=/; max-age=${YEAR_SECONDS}; SameSite=Lax`;
    button.closest(".demo-banner")?.remove();
    document.getElementById("message-input")?.focus();
  });
}
