"""Stored cross-site scripting: hostile text in every place a person or a model can put it
(model output, a user's message, a persona's name and description, a conversation's title)
must come out of every page as text, and the pages must carry a Content-Security-Policy that
would stop a script even if some escaping failed."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from conversations import services
from conversations.models import Message, Persona, Role, Status

from .pages import read

pytestmark = pytest.mark.django_db

PAYLOADS = [
    "<script>alert('s')</script>",
    "<img src=x onerror=alert('i')>",
    '"><svg onload=alert(1)>',
    "</script><script>alert('json')</script>",
    "[link](javascript:alert('md'))",
    '<a href="javascript:alert(1)">a</a>',
    "<iframe src=https://evil.example></iframe>",
    "{{ request.user.password }} {% debug %}",
]
HOSTILE = " ".join(PAYLOADS)


@pytest.fixture
def hostile(owner, personas):
    persona = Persona.objects.create(
        name="Evil <img src=x onerror=alert('p')>"[:80],
        name_en="<script>alert('pn')</script>",
        description="<svg onload=alert('d')>"[:200],
        emoji="<b>",
        is_active=True,
    )
    conversation = services.start_conversation(user=owner, persona=persona)
    services.rename_conversation(user=owner, conversation_id=conversation.pk, title=HOSTILE[:200])
    Message.objects.create(conversation=conversation, role=Role.USER, content=HOSTILE)
    Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content=f"Sure!\n\n{HOSTILE}\n\n```html\n{HOSTILE}\n```",
        status=Status.COMPLETE,
    )
    return conversation


def hostile_pages(conversation) -> dict[str, str]:
    return {
        "conversation": reverse("conversation", args=[conversation.pk]),
        "new chat": reverse("new_conversation"),
        "conversation list": reverse("conversation_list") + "?q=alert",
        "delete": reverse("delete_conversation", args=[conversation.pk]),
    }


def test_hostile_text_from_anyone_comes_out_of_every_page_as_text(client, owner, hostile):
    """Without escaping (or with markdown rendered unsanitized, or `|safe` in a template)
    each payload would become an element that runs script in the owner's browser."""
    client.force_login(owner)
    for page, url in hostile_pages(hostile).items():
        response = client.get(url, headers={"accept-language": "en"})
        assert response.status_code == 200, page
        reader = read(response.content)
        assert reader.runnable == [], f"{page}: {reader.runnable}"
        assert b"alert(" in response.content, f"{page} does not show the hostile text at all"
    older = client.get(
        reverse("older_messages", args=[hostile.pk]),
        {"before": hostile.messages.order_by("-id").first().pk + 1},
    )
    reader = read(json.loads(older.content)["html"])
    assert reader.runnable == [], f"older messages: {reader.runnable}"


def test_the_page_data_for_the_scripts_cannot_close_its_script_element(client, owner, hostile):
    """Data handed to the page's modules (json_script) holding `</script>` would end the
    element early and let the rest run as a script."""
    client.force_login(owner)
    html = client.get(reverse("conversation", args=[hostile.pk])).content.decode()
    assert "</script><script>alert('json')" not in html


CSP_PAGES = ["login", "signup", "chat", "new_conversation", "conversation_list"]


def csp_of(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def test_every_page_has_a_csp_that_allows_no_inline_script_and_no_eval(client, owner, hostile):
    """If some escaping ever failed, the policy is the second wall: a browser runs no inline
    script, no event handler attribute, no `eval`, nothing from another origin."""
    client.force_login(owner)
    urls = [reverse(name) for name in CSP_PAGES] + list(hostile_pages(hostile).values())
    urls += [
        "/no-such-page/",
        reverse("conversation", args=["0" * 8 + "-0000-0000-0000-" + "0" * 12]),
    ]
    for url in urls:
        response = client.get(url)
        policy = csp_of(response)
        assert policy, f"{url} has no Content-Security-Policy"
        script = policy.get("script-src", policy.get("default-src"))
        assert script == ["'self'"], f"{url}: script-src {script}"
        assert policy.get("object-src") == ["'none'"]
        assert policy.get("base-uri") == ["'none'"]
        assert policy.get("frame-ancestors") == ["'none'"]
        assert "'unsafe-inline'" not in policy.get("style-src", [])
        header = response.headers["Content-Security-Policy"]
        assert "unsafe-eval" not in header and "unsafe-inline" not in header


def test_pages_hold_no_inline_script_or_style_the_policy_would_block(client, owner, hostile):
    """The policy only protects if the pages live within it: an inline script or style
    attribute of our own would be blocked (a broken page) and tempt someone to loosen it."""
    client.force_login(owner)
    for name in CSP_PAGES:
        reader = read(client.get(reverse(name)).content)
        assert reader.runnable == [], f"{name}: {reader.runnable}"
        assert reader.inline_styles == [], f"{name}: {reader.inline_styles}"
    reader = read(client.get(reverse("conversation", args=[hostile.pk])).content)
    assert reader.inline_styles == []
