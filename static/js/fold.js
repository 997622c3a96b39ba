// A long message of the user's (over about 20 lines, as shown) is folded to its first lines,
// with Show more / Show less under it. The stylesheet sets the height (`.content.folded`); a
// message is folded only when its text is taller than that, which only the layout can say.

const CONTENT = ':scope > .message[data-role="user"] > .bubble > .content';

export function foldLongMessages(list, strings) {
  const checked = new WeakMap(); // content -> the text it was measured with
  let scheduled = false;

  function toggleFor(content) {
    let button = content.nextElementSibling;
    if (button && button.classList.contains("fold-toggle")) return button;
    button = document.createElement("button");
    button.type = "button";
    button.className = "tool fold-toggle";
    button.addEventListener("click", () => {
      const folded = !content.classList.contains("folded");
      setFolded(content, button, folded);
      if (folded) content.closest(".message").scrollIntoView({ block: "nearest" });
    });
    content.after(button);
    return button;
  }

  function setFolded(content, button, folded) {
    content.classList.toggle("folded", folded);
    button.textContent = folded ? strings.showMore : strings.showLess;
    button.setAttribute("aria-expanded", String(!folded));
  }

  function measure() {
    scheduled = false;
    const todo = [...list.querySelectorAll(CONTENT)].filter(
      (content) => checked.get(content) !== content.textContent && content.getClientRects().length,
    );
    // Fold every candidate first, then read the heights: one layout for all of them.
    for (const content of todo) content.classList.add("folded");
    const tall = todo.map((content) => content.scrollHeight > content.clientHeight + 1);
    todo.forEach((content, i) => {
      checked.set(content, content.textContent);
      const next = content.nextElementSibling;
      if (tall[i]) setFolded(content, toggleFor(content), true);
      else {
        content.classList.remove("folded");
        if (next && next.classList.contains("fold-toggle")) next.remove();
      }
    });
  }

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(measure);
  }

  // New messages, and a message whose text changed; a streaming reply's changes are not ours.
  new MutationObserver((records) => {
    for (const record of records) {
      const target = record.target.nodeType === Node.ELEMENT_NODE ? record.target : record.target.parentElement;
      if (target === list || target?.closest('.message[data-role="user"]')) {
        schedule();
        return;
      }
    }
  }).observe(list, { childList: true, subtree: true, characterData: true });
  schedule();
}
