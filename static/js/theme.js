// The colour theme: the system's, unless the user picked light or dark (kept in localStorage,
// so every page and tab of this browser shows the choice).
//
// A classic script, loaded blocking in <head> right after the stylesheet: the one exception to
// "ES modules only". A module runs once the page is parsed, so the page could be painted in
// the system's theme first and then switch (a flash of the wrong theme); the CSP allows no
// inline script to do it earlier. A blocking script runs after the stylesheet has loaded and
// before the body exists.
//
// The dark colours are written once, in app.css's `@media (prefers-color-scheme: dark)` block.
// A picked theme rewrites that block's condition through the CSSOM (`all` when it should
// apply, `not all` when not), and System puts the original condition back: no second copy of
// the colours to keep in step. `<html data-theme>` names the picked theme for anything else.
(() => {
  const KEY = "theme";
  const THEMES = ["system", "light", "dark"];
  const SCHEME = /^\(\s*prefers-color-scheme\s*:\s*(dark|light)\s*\)$/;
  const root = document.documentElement;
  const originals = new WeakMap(); // media rule -> its condition as written

  function stored() {
    try {
      const theme = localStorage.getItem(KEY);
      return THEMES.includes(theme) ? theme : "system";
    } catch {
      return "system"; // storage refused (privacy settings): the system's theme
    }
  }

  function apply(theme) {
    for (const sheet of document.styleSheets) {
      let rules;
      try {
        rules = sheet.cssRules;
      } catch {
        continue; // not loaded yet, or from another origin
      }
      for (const rule of rules) {
        if (!(rule instanceof CSSMediaRule)) continue;
        const original = originals.get(rule) ?? rule.media.mediaText;
        const scheme = original.trim().match(SCHEME);
        if (!scheme) continue;
        originals.set(rule, original);
        if (theme === "system") rule.media.mediaText = original;
        else rule.media.mediaText = scheme[1] === theme ? "all" : "not all";
      }
    }
    if (theme === "system") {
      delete root.dataset.theme;
      root.style.removeProperty("color-scheme");
    } else {
      root.dataset.theme = theme;
      // Form controls and scrollbars follow too (CSSOM, which the CSP allows).
      root.style.setProperty("color-scheme", theme);
    }
  }

  function choose(theme) {
    try {
      if (theme === "system") localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, theme);
    } catch {
      // Not remembered, but shown on this page all the same.
    }
    apply(theme);
  }

  function showChoice() {
    for (const select of document.querySelectorAll("select[data-theme-select]")) {
      select.value = stored();
    }
  }

  apply(stored());

  document.addEventListener("DOMContentLoaded", () => {
    apply(stored()); // in case a stylesheet was not ready above
    showChoice();
    for (const select of document.querySelectorAll("select[data-theme-select]")) {
      select.addEventListener("change", () => {
        choose(select.value);
        showChoice();
      });
    }
  });

  // A choice made in another tab applies here too.
  window.addEventListener("storage", (event) => {
    if (event.key !== KEY && event.key !== null) return;
    apply(stored());
    showChoice();
  });
})();
