// Behaviour every page shares: the language switcher applies the choice at once.

for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.form.classList.add("autosubmit");
  select.addEventListener("change", () => select.form.requestSubmit());
}
