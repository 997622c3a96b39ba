"""Reading pages as an attacker would: forms, scripts, attributes that run code."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

JSON_TYPES = {"application/json", "application/ld+json"}


@dataclass
class Form:
    method: str
    action: str
    inputs: dict[str, str] = field(default_factory=dict)


class PageReader(HTMLParser):
    """Collects forms, and everything in a page that could run script."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.runnable: list[str] = []
        self.inline_styles: list[str] = []
        self._open_form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            if name.startswith("on"):
                self.runnable.append(f"<{tag} {name}={value!r}>")
            if value.strip().lower().startswith(("javascript:", "vbscript:", "data:text/html")):
                self.runnable.append(f"<{tag} {name}={value!r}>")
        if "style" in values:
            self.inline_styles.append(f"<{tag} style={values['style']!r}>")
        if tag == "script":
            kind = values.get("type", "").lower()
            if "src" not in values and kind not in JSON_TYPES:
                self.runnable.append("<script> without src")
        if tag in {"iframe", "object", "embed", "base", "frame"}:
            self.runnable.append(f"<{tag}>")
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            self.runnable.append("<meta http-equiv=refresh>")
        if tag == "form":
            self._open_form = Form(values.get("method", "get").lower(), values.get("action", ""))
            self.forms.append(self._open_form)
        if tag in {"input", "button", "textarea", "select"} and self._open_form is not None:
            self._open_form.inputs[values.get("name", "")] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open_form = None


def read(html: str | bytes) -> PageReader:
    reader = PageReader()
    reader.feed(html.decode() if isinstance(html, bytes) else html)
    reader.close()
    return reader
