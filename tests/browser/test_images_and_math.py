"""A reply's images are links and its LaTeX is drawn by KaTeX, streamed and reloaded alike; the
page asks no other host for anything; the browser marks up a reply as the server does."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from conversations import services
from conversations.models import Message, Role, Status
from conversations.rendering import render_markdown
from tests.browser.helpers import last_reply, send, wait_for_status

pytestmark = pytest.mark.browser

IMAGE = "Here: ![a cat](https://example.com/cat.png)"
MATH = (
    "Euler: $e^{i\\pi} + 1 = 0$, prices stay: $5 and $10.\n\n"
    "$$\n\\int_0^1 x^2\\,dx = \\frac{1}{3}\n$$\n\n"
    "and \\(a^2 + b^2 = c^2\\)."
)


def open_with_reply(login, content: str, **options):
    page = login(**options)
    conversation = services.start_conversation(user=page.user)
    Message.objects.create(conversation=conversation, role=Role.USER, content="Show me")
    Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, content=content, status=Status.COMPLETE
    )
    return page, conversation


def record_hosts(page) -> set[str]:
    """Every host the page sends a request or opens a socket to, as the page runs."""
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    page.on("websocket", lambda socket: hosts.add(urlsplit(socket.url).netloc))
    return hosts


def test_an_image_is_a_link_and_the_page_asks_no_other_host(login, app_server):
    page, conversation = open_with_reply(login, IMAGE)
    hosts = record_hosts(page)
    page.goto(f"/c/{conversation.pk}/")
    link = last_reply(page).locator("a.image-link")
    expect(link).to_have_text("a cat")
    expect(link).to_have_attribute("href", "https://example.com/cat.png")
    expect(last_reply(page).locator(".content")).not_to_contain_text("!a cat")

    # Streamed: the demo model quotes the question, image and all.
    send(page, "Draw ![a dog](https://example.org/dog.png) for me")
    wait_for_status(page, "complete")
    link = last_reply(page).locator("a.image-link")
    expect(link).to_have_text("a dog")
    expect(link).to_have_attribute("href", "https://example.org/dog.png")
    page.wait_for_timeout(300)
    assert page.locator("#messages img").count() == 0
    assert hosts == {urlsplit(app_server).netloc}


def test_math_is_drawn_on_load_and_while_streaming(login, app_server):
    page, conversation = open_with_reply(login, MATH)
    hosts = record_hosts(page)
    fonts: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda response: (
            fonts.append((response.url, response.status)) if "KaTeX_" in response.url else None
        ),
    )
    page.goto(f"/c/{conversation.pk}/")
    reply = last_reply(page)
    expect(reply.locator(".math-inline .katex")).to_have_count(2)
    expect(reply.locator("div.math-display .katex-display")).to_have_count(1)
    # The formula's text is KaTeX's (MathML for screen readers holds the TeX source).
    expect(reply.locator("div.math-display annotation")).to_have_text(
        "\\int_0^1 x^2\\,dx = \\frac{1}{3}"
    )
    expect(reply.locator(".content")).to_contain_text("prices stay: $5 and $10.")
    # KaTeX's stylesheet and fonts come from the app.
    family = reply.locator(".math-inline .katex").first.evaluate(
        "el => getComputedStyle(el).fontFamily"
    )
    assert "KaTeX_Main" in family
    page.evaluate("document.fonts.ready")
    assert fonts and all(status == 200 for _, status in fonts)

    send(page, "Is \\(x_1 * y_1\\) the same as $$x_2 * y_2$$ for $3?")
    wait_for_status(page, "complete")
    reply = last_reply(page)
    expect(reply.locator(".math-inline .katex")).to_have_count(1)
    expect(reply.locator("span.math-display .katex-display")).to_have_count(1)
    expect(reply.locator(".content em")).to_have_count(0)
    expect(reply.locator(".content")).to_contain_text("for $3?")
    assert hosts == {urlsplit(app_server).netloc}


def test_tex_that_does_not_parse_stays_as_written(login):
    page, conversation = open_with_reply(login, "Broken: $\\frac{1}{$ and fine: $x^2$")
    page.goto(f"/c/{conversation.pk}/")
    reply = last_reply(page)
    expect(reply.locator(".math-inline .katex")).to_have_count(1)
    expect(reply.locator(".math-error")).to_have_text("\\frac{1}{")


SAMPLES = [
    MATH,
    IMAGE,
    '![a *cat*](https://example.com/cat.png "Cat") ![b](http://x.example/y.png) '
    "![](https://e.example/z.png) ![x](javascript:alert(1))",
    "so \\[x^2\\] and $$y^2$$ but `$x$` and $5-$10 a month\n\n1$x$ and \\$y\\$",
    "The formula:\n\\[\nE = mc^2\n\\]\nholds.",
    "> $$\n> a < b\n> $$",
    "- item $x_1$\n- \\(y_2\\)\n\n    $indented code$",
    "$$\nnot closed\n\nso text",
    "$a_1 * b_1 * c_1$ and \\(x_1 \\_ y_1\\)",
]

CANONICAL = """([samples, serverHtml]) => import("/static/js/render.js").then((render) => {
    const canonical = (node) => {
        if (node.nodeType === Node.TEXT_NODE) return node.data;
        const fragment = node.nodeType === Node.DOCUMENT_FRAGMENT_NODE;
        if (node.nodeType !== Node.ELEMENT_NODE && !fragment) return "";
        const inner = [...node.childNodes].map(canonical).join("");
        if (fragment) return inner.trim();
        const attrs = [...node.attributes].map((a) => `${a.name}=${a.value}`).sort().join(" ");
        return `<${node.tagName} ${attrs}>${inner}</${node.tagName}>`;
    };
    return samples.map((text, i) => {
        const server = document.createElement("template");
        server.innerHTML = serverHtml[i];
        return [canonical(render.markdownFragment(text)), canonical(server.content)];
    });
})"""


def test_the_browser_marks_up_math_and_images_as_the_server_does(login):
    page = login()
    page.goto("/c/new/")
    page.wait_for_selector("html[data-ready]", state="attached")
    server = [render_markdown(text) for text in SAMPLES]
    for text, (browser, rendered) in zip(
        SAMPLES, page.evaluate(CANONICAL, [SAMPLES, server]), strict=True
    ):
        assert browser == rendered, text
