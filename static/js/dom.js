// Small helpers every script shares: an element with a class and text, a translated
// sentence with its %(name)s placeholders filled in, and a POST answered with JSON.

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, key) => String(values[key] ?? ""));
}

// A POST as the page's views answer a script (`Accept: application/json`): `ok` and the JSON
// they sent ({} when it was none). A network failure throws.
export async function postForJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    body,
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  return { ok: response.ok, data: await response.json().catch(() => ({})) };
}
