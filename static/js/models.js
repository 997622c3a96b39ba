// The chat header's model picker: a choice is saved at once (POST, JSON back) and applies from
// the next answer. Saved, the composer's data-accepts-images follows the new model (the
// attachments read it); refused, the select goes back to the model that was set and the
// server's sentence shows where the chat shows its errors. Without JavaScript the form posts.

import { postForJson } from "./dom.js";

export function setupModelPicker(strings = {}) {
  const form = document.getElementById("model-picker");
  if (!form) return;
  const select = form.elements.namedItem("model");
  const status = document.getElementById("model-status");
  const errorBox = document.getElementById("chat-error");
  const composer = document.getElementById("composer");
  let saved = select.value;

  const showError = (text) => {
    if (!errorBox) return;
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  };

  // What the server answered: {model, label, accepts_images, message} or {errors}.
  const post = async (body) => {
    try {
      const { ok, data } = await postForJson(form.action, body);
      if (ok && data.model) return { data };
      const errors = data.errors?.model || data.errors?.__all__ || [];
      return { error: errors[0]?.message || strings.modelFailed };
    } catch {
      return { error: strings.modelFailed };
    }
  };

  const save = async () => {
    const body = new FormData(form); // before the select is disabled, which leaves it out
    select.disabled = true;
    status.textContent = "";
    const { data, error } = await post(body);
    select.disabled = false;
    if (error) {
      select.value = saved;
      showError(error);
      select.focus();
      return;
    }
    saved = select.value = data.model;
    if (composer) composer.dataset.acceptsImages = String(Boolean(data.accepts_images));
    status.textContent = data.message || "";
    showError("");
    form.dispatchEvent(new CustomEvent("model-change", { bubbles: true, detail: data }));
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    save();
  });
  select.addEventListener("change", save);
}
