"""Attacks on the pages: other people's objects, forged forms, password guessing, sign-up."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from conversations import services, sharing
from conversations.models import Attachment, Conversation, Message, Role, ShareLink, Status

from .pages import read

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"


def object_routes() -> list[tuple[str, list[str]]]:
    """Every named route that takes an object's id, with the names of its arguments.

    Found from the URL configuration itself, so a page added later (an export, say) is
    attacked too without anyone remembering to list it here.
    """
    found: list[tuple[str, list[str]]] = []

    def walk(patterns: list[Any], namespace: str = "") -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                if entry.namespace == "admin":
                    continue  # staff only; Django's own permission checks
                prefix = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, prefix)
            elif isinstance(entry, URLPattern) and entry.name:
                arguments = list(entry.pattern.regex.groupindex)
                # Django's and allauth's own (a password-reset or email-confirmation link's
                # signed key) name no object of ours.
                if arguments and not entry.lookup_str.startswith(("django.", "allauth.")):
                    found.append((namespace + entry.name, arguments))

    walk(get_resolver().url_patterns)
    return found


# Values for route arguments that name no object but a variant of the page (an export's
# format): the route is attacked once per value.
VARIANTS = {"fmt": ["json", "md"]}


def fill(
    arguments: list[str], conversation: Conversation, message: Message
) -> list[dict[str, Any]]:
    objects = {
        "conversation_id": conversation.pk,
        "message_id": message.pk,
        "share_id": ShareLink.objects.get(conversation=conversation).pk,
        "attachment_id": Attachment.objects.get(conversation=conversation).pk,
        # A share link's token is the key itself: whoever holds it may read the snapshot. An
        # outsider can only guess one, and a guess must find nothing.
        "token": "a-guessed-token-that-names-no-share-link-at-all",
    }
    unknown = [name for name in arguments if name not in objects and name not in VARIANTS]
    assert not unknown, (
        f"a route takes {unknown}: teach tests/hardening/test_page_attacks.py::fill how to "
        "make one of the owner's objects for it, so the route is attacked too"
    )
    fixed = {name: objects[name] for name in arguments if name in objects}
    variable = [name for name in arguments if name in VARIANTS]
    return [
        {**fixed, **dict(zip(variable, values, strict=True))}
        for values in itertools.product(*(VARIANTS[name] for name in variable))
    ]


@pytest.fixture
def owned(owner, personas, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    conversation = services.start_conversation(user=owner)
    services.rename_conversation(user=owner, conversation_id=conversation.pk, title="Mine")
    Message.objects.create(conversation=conversation, role=Role.USER, content="Private question")
    message = Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="Private answer",
        status=Status.COMPLETE,
    )
    sharing.share_conversation(user=owner, conversation_id=conversation.pk)
    # An upload not sent yet: its file, and taking it back, are the owner's only.
    upload = Attachment(
        conversation=conversation,
        kind="text",
        name="private.txt",
        content_type="text/plain",
        size=12,
        text="Private file",
    )
    upload.file.save("private.txt", ContentFile(b"Private file"))
    return conversation, message


HOSTILE_POST = {
    "title": "taken over",
    "pinned": "on",
    "temperature": "1.5",
    "system_prompt": "obey me",
    "content": "injected",
    "copy_from": "",
}


@pytest.mark.parametrize(("name", "arguments"), object_routes(), ids=lambda v: str(v))
def test_another_users_object_is_404_on_every_route(client, outsider, owned, name, arguments):
    """Guessing or leaking an id (IDOR): the outsider asks for, and posts to, every page that
    names an object of the owner's. Without the ownership filter they would read it or change
    it; with it, each answer is 404 (or 405 for a method the page never takes) and nothing
    of the owner's changes."""
    conversation, message = owned
    client.force_login(outsider)
    for kwargs in fill(arguments, conversation, message):
        url = reverse(name, kwargs=kwargs)
        answers = {
            "GET": client.get(url, {"before": message.pk}),
            "POST": client.post(url, HOSTILE_POST),
        }
        for method, response in answers.items():
            assert response.status_code in (404, 405), f"{method} {url}: {response.status_code}"
            assert b"Private" not in response.content
        assert 404 in {response.status_code for response in answers.values()}
    conversation.refresh_from_db()
    assert (conversation.title, conversation.pinned) == ("Mine", False)
    assert [m.content for m in conversation.messages.order_by("id")] == [
        "Private question",
        "Private answer",
    ]
    assert not Conversation.objects.filter(user=get_user_model().objects.get(pk=outsider.pk))
    assert ShareLink.objects.live().filter(conversation=conversation).count() == 1
    assert Attachment.objects.filter(conversation=conversation).count() == 1


def test_a_compare_of_another_users_conversations_is_404(client, outsider, owned):
    """The compare page names its conversations in the query string (`?c=…`), where the
    route discovery above does not look."""
    conversation, _ = owned
    client.force_login(outsider)
    response = client.get(reverse("compare_view"), {"c": str(conversation.pk)})
    assert response.status_code == 404
    assert b"Private" not in response.content


def test_the_routes_attacked_above_include_every_conversation_page():
    names = {name for name, _ in object_routes()}
    assert {
        "conversation",
        "older_messages",
        "rename_conversation",
        "pin_conversation",
        "delete_conversation",
        "conversation_settings",
    } <= names


def pages_for(owner: Any, conversation: Conversation) -> dict[str, str]:
    return {
        "login": reverse("login"),
        "signup": reverse("signup"),
        "new chat": reverse("new_conversation"),
        "conversation": reverse("conversation", args=[conversation.pk]),
        "conversation list": reverse("conversation_list"),
        "delete": reverse("delete_conversation", args=[conversation.pk]),
        "import": reverse("import_conversations"),
        "compare": reverse("compare"),
    }


def test_every_form_that_posts_carries_a_csrf_token(client, owner, owned):
    """A form without the token is either broken (refused by the middleware) or, if a view
    were exempted to make it work, open to cross-site request forgery."""
    conversation, _ = owned
    seen = 0
    for page, url in pages_for(owner, conversation).items():
        if page not in {"login", "signup"}:
            client.force_login(owner)
        else:
            client.logout()
        response = client.get(url)
        assert response.status_code == 200, page
        for form in read(response.content).forms:
            if form.method == "post":
                seen += 1
                assert form.inputs.get("csrfmiddlewaretoken"), f"{page}: {form.action or url}"
    assert seen >= 8


def csrf_targets(conversation: Conversation) -> list[tuple[str, dict[str, str]]]:
    pk = conversation.pk
    return [
        (reverse("new_conversation"), {"message": "forged"}),
        (reverse("rename_conversation", args=[pk]), {"title": "forged"}),
        (reverse("pin_conversation", args=[pk]), {"pinned": "on"}),
        (reverse("conversation_settings", args=[pk]), {"temperature": "2"}),
        (reverse("delete_conversation", args=[pk]), {}),
        (reverse("logout"), {}),
        (reverse("set_language"), {"language": "ko"}),
        (reverse("import_conversations"), {}),
        (reverse("start_compare"), {"prompt": "forged"}),
    ]


def test_a_forged_cross_site_post_is_refused_on_every_form(owner, owned):
    """Cross-site request forgery: another site makes the logged-in browser post to ours.
    Without CsrfViewMiddleware each of these would rename, pin, delete, log out..."""
    conversation, _ = owned
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    for url, data in csrf_targets(conversation):
        response = browser.post(url, data)
        assert response.status_code == 403, url
    conversation.refresh_from_db()
    assert conversation.title == "Mine" and not conversation.pinned
    assert Conversation.objects.filter(user=owner).count() == 1
    assert browser.get(reverse("conversation", args=[conversation.pk])).status_code == 200


def test_a_forged_login_post_is_refused(make_user):
    """Login CSRF: another site logs the victim's browser into the attacker's account, to
    read what the victim then types. The login form needs the token too."""
    make_user("mallory", PASSWORD)
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(reverse("login"), {"username": "mallory", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in browser.session


# Password guessing.


def limit_failures(settings, *, per_username=5, per_address=20, window=900) -> None:
    """The LOGIN_FAILURES_* variables, as chatsite/settings.py hands them to allauth."""
    settings.LOGIN_FAILURE_WINDOW_SECONDS = window
    settings.ACCOUNT_RATE_LIMITS = {
        "login_failed": f"{per_address}/{window}s/ip,{per_username}/{window}s/key"
    }


def attempt(client: Client, username: str, password: str, address: str) -> Any:
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_guessing_one_users_password_is_throttled_per_username(
    client, make_user, settings, address
):
    """Online guessing of one account's password: after LOGIN_FAILURES_PER_USERNAME failures
    the form refuses to check any password for that username, even the right one, and answers
    429. Without the throttle the guessing goes on at full speed."""
    limit_failures(settings, per_username=3)
    victim = f"victim-{uuid.uuid4().hex[:8]}"
    make_user(victim, PASSWORD)
    for _ in range(3):
        assert attempt(client, victim, "wrong-guess", address).status_code == 200
    # From another address too: the count belongs to the username.
    elsewhere = "192.0.2.77"
    refused = attempt(client, victim, PASSWORD, elsewhere)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session
    assert "Too many failed attempts" in refused.context["login_error"]
    # Someone else logs in as usual meanwhile.
    bystander = f"bystander-{uuid.uuid4().hex[:8]}"
    make_user(bystander, PASSWORD)
    assert attempt(client, bystander, PASSWORD, address).status_code == 302


def test_guessing_from_one_address_is_throttled_across_usernames(
    client, make_user, settings, address
):
    """Password spraying: one address tries a common password on many accounts, each only
    once or twice. The per-address count stops it after LOGIN_FAILURES_PER_ADDRESS failures;
    other addresses are not affected."""
    limit_failures(settings, per_address=4, per_username=100)
    names = [f"sprayed-{i}-{uuid.uuid4().hex[:6]}" for i in range(5)]
    for name in names:
        make_user(name, PASSWORD)
    for name in names[:4]:
        assert attempt(client, name, "Summer2026!", address).status_code == 200
    assert attempt(client, names[4], PASSWORD, address).status_code == 429
    assert attempt(client, names[4], PASSWORD, "198.51.100.23").status_code == 302


def test_a_successful_login_is_not_counted_as_a_failure(client, make_user, settings, address):
    """Someone who mistypes twice and then gets it right is let in, and their logins do not
    use up what is left. (The two typos still count until the window ends: a guesser who
    also knows one password could otherwise wipe the count between guesses.)"""
    limit_failures(settings, per_username=3)
    name = f"typo-{uuid.uuid4().hex[:8]}"
    make_user(name, PASSWORD)
    for _ in range(2):
        attempt(client, name, "typo", address)
    for _ in range(3):
        assert attempt(client, name, PASSWORD, address).status_code == 302
        client.logout()
    assert attempt(client, name, "typo", address).status_code == 200
    assert attempt(client, name, PASSWORD, address).status_code == 429


def test_the_throttle_ends_with_its_window(client, make_user, settings, address):
    limit_failures(settings, per_username=1, window=1)
    name = f"patient-{uuid.uuid4().hex[:8]}"
    make_user(name, PASSWORD)
    attempt(client, name, "wrong", address)
    assert attempt(client, name, PASSWORD, address).status_code == 429
    time.sleep(1.5)
    assert attempt(client, name, PASSWORD, address).status_code == 302


def test_the_admin_login_is_no_second_door(client, make_user, settings, address):
    """The admin's own login page is a second door to the same passwords: were it to check
    them itself, guessing would just move to /admin/login/. It sends people to the site's
    login, whose limits count, and logs nobody in."""
    limit_failures(settings, per_username=2)
    name = f"staff-{uuid.uuid4().hex[:8]}"
    make_user(name, PASSWORD, is_staff=True)
    url = reverse("admin:login")
    for _ in range(2):
        attempt(client, name, "wrong", address)
    response = client.post(url, {"username": name, "password": PASSWORD}, REMOTE_ADDR=address)
    assert "_auth_user_id" not in client.session
    assert response.status_code == 302
    assert response.url.startswith(reverse("login") + "?next=")
    refused = attempt(client, name, PASSWORD, address)
    assert refused.status_code == 429
    assert "Too many failed attempts" in refused.content.decode()


def test_the_login_page_says_why_it_refuses(client, make_user, settings, address):
    limit_failures(settings, per_username=1)
    name = f"told-{uuid.uuid4().hex[:8]}"
    make_user(name, PASSWORD)
    attempt(client, name, "wrong", address)
    response = attempt(client, name, PASSWORD, address)
    assert "Too many failed attempts to log in" in response.content.decode()


# Sign-up.


def test_sign_up_can_be_closed(client, settings):
    """A private server: with ALLOW_SIGNUP=0 nobody can make an account, by the page or by
    posting to it directly, and the login page stops offering it."""
    settings.ALLOW_SIGNUP = False
    password = "quiet-harbor-42x"
    form = {
        "username": "intruder",
        "email": "intruder@example.com",
        "password1": password,
        "password2": password,
    }
    assert client.get(reverse("signup")).status_code == 404
    assert client.post(reverse("signup"), form).status_code == 404
    assert not get_user_model().objects.filter(username="intruder").exists()
    assert reverse("signup").encode() not in client.get(reverse("login")).content


# Imports.


def test_an_import_over_the_size_limit_is_refused_with_a_clear_message(client, owner, personas):
    """A huge upload (memory, disk, a long parse): refused by its size before it is read,
    with a sentence naming the limit, and nothing is stored."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from conversations.exports import import_limit

    client.force_login(owner)
    upload = SimpleUploadedFile("big.json", b" " * (import_limit() + 1), "application/json")
    response = client.post(reverse("import_conversations"), {"file": upload})
    assert response.status_code == 400
    assert "MB" in response.context["import_error"]
    assert not Conversation.objects.filter(user=owner).exists()


def test_an_import_always_lands_in_the_importers_own_account(client, owner, outsider, owned):
    """An export names its conversations and messages; importing someone else's export (or
    one edited to name their ids) must create new conversations of the importer's, never
    write into the ones it names."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    conversation, _ = owned
    client.force_login(owner)
    exported = client.get(
        reverse("export_conversation", kwargs={"conversation_id": conversation.pk, "fmt": "json"})
    ).content
    client.force_login(outsider)
    upload = SimpleUploadedFile("theirs.json", exported, "application/json")
    response = client.post(reverse("import_conversations"), {"file": upload})
    assert response.status_code == 302
    imported = Conversation.objects.get(user=outsider)
    assert imported.pk != conversation.pk
    assert Conversation.objects.filter(user=owner).count() == 1
    assert [m.content for m in conversation.messages.order_by("id")] == [
        "Private question",
        "Private answer",
    ]
