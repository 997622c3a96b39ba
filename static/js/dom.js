// Small helpers every script shares: an element with a class and text, a translated
// sentence with its %(name)s placeholders filled in, and a form posted for a JSON answer.

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, key) => String(values[key] ?? ""));
}

// A form posted as the page's views answer a script (`Accept: application/json`): `ok` and
// the JSON they sent ({} when it was none). A network failure throws.
export async function postForJson(form, body = new FormData(form)) {
  const response = await fetch(form.action, {
    method: "POST",
    body,
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  return { ok: response.ok, data: await response.json().catch(() => ({})) };
}
