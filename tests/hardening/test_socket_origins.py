"""The socket's Origin check compares scheme, host and port, as Django's CSRF check does: a
page of another origin on the same host (another port, http instead of https) is another site,
and the browser sends the user's cookie along with its socket all the same."""

from __future__ import annotations

import pytest

from .sockets import AppSocket, cookie_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_channel_layer"),
]

# One of the names the site answers to (DJANGO_ALLOWED_HOSTS), so that only the scheme or
# the port tells the pages below from the site's own.
SITE = "localhost"


@pytest.fixture
def site(settings):
    settings.ALLOWED_HOSTS = [SITE, "127.0.0.1"]
    settings.CSRF_TRUSTED_ORIGINS = []
    return settings


@pytest.fixture
def behind_https_proxy(site):
    """DJANGO_HTTPS=1: the proxy's X-Forwarded-Proto says how the browser reached the site."""
    site.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return site


async def assert_accepted(owner, conversation, **browser) -> None:
    socket = AppSocket(conversation.pk, cookie=await cookie_for(owner), **browser)
    connected, _subprotocol = await socket.communicator.connect()
    try:
        assert connected, f"a socket from {browser['origin']} was refused"
        assert (await socket.until("ready"))["conversation_id"] == str(conversation.pk)
    finally:
        await socket.communicator.disconnect()


async def assert_refused(owner, conversation, **browser) -> None:
    socket = AppSocket(conversation.pk, cookie=await cookie_for(owner), **browser)
    connected, _code = await socket.communicator.connect()
    try:
        assert not connected, f"a socket from {browser['origin']} was accepted"
        assert await socket.communicator.receive_nothing(timeout=0.2)
    finally:
        await socket.communicator.disconnect()


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        (f"{SITE}:8000", f"http://{SITE}:8001"),
        (f"{SITE}:8000", f"http://{SITE}"),
        (SITE, f"http://{SITE}:8080"),
    ],
    ids=["another-port", "default-port-for-a-site-on-8000", "a-port-for-a-site-on-80"],
)
async def test_a_page_on_the_same_host_but_another_port_is_refused(
    owner, conversation, site, host, origin
):
    """Another service on the same machine (a dev server, an admin tool, anything serving
    what a user can upload) opens the socket from its own port. Comparing hosts only, the
    check let it read and drive the user's conversation."""
    await assert_refused(owner, conversation, host=host, origin=origin)


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-forwarded-proto": "https"}],
    ids=["plain", "forwarded-proto-not-trusted"],
)
async def test_an_https_page_is_refused_by_a_site_served_over_http(
    owner, conversation, site, headers
):
    """The https origin of the same host is another site than the http one the socket
    reached. A client's X-Forwarded-Proto counts only where DJANGO_HTTPS trusts a proxy's."""
    await assert_refused(owner, conversation, host=SITE, origin=f"https://{SITE}", headers=headers)


@pytest.mark.parametrize(
    ("scheme", "headers"),
    [("ws", {"x-forwarded-proto": "https"}), ("wss", {})],
    ids=["proxy-says-https", "tls-in-the-server"],
)
async def test_an_http_page_is_refused_by_a_site_served_over_https(
    owner, conversation, behind_https_proxy, scheme, headers
):
    """A plain-http page (one a network attacker can write into) on the host of an https
    site: without the scheme in the comparison it could open the socket and read along."""
    await assert_refused(
        owner, conversation, host=SITE, origin=f"http://{SITE}", scheme=scheme, headers=headers
    )


@pytest.mark.parametrize(
    ("host", "origin", "scheme", "headers"),
    [
        (f"{SITE}:8000", f"http://{SITE}:8000", "ws", {}),
        ("127.0.0.1", "http://127.0.0.1", "ws", {}),
        (SITE, f"https://{SITE}", "ws", {"x-forwarded-proto": "https"}),
        (SITE, f"https://{SITE}", "wss", {}),
    ],
    ids=["http-on-a-port", "http-on-80", "https-behind-the-proxy", "tls-in-the-server"],
)
async def test_the_sites_own_origin_is_accepted(
    owner, conversation, behind_https_proxy, host, origin, scheme, headers
):
    """The control for the refusals above: the page's own scheme, host and port."""
    await assert_accepted(
        owner, conversation, host=host, origin=origin, scheme=scheme, headers=headers
    )


async def test_an_origin_in_csrf_trusted_origins_is_accepted(owner, conversation, site):
    """A proxy that reaches the process by another name than the browser's (no Host passed
    on): DJANGO_CSRF_TRUSTED_ORIGINS names the site's public origin, for forms and the socket
    alike; a wildcard there covers the subdomains, over its own scheme only."""
    site.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com", "https://*.example.org"]
    await assert_accepted(
        owner, conversation, host="127.0.0.1:8000", origin="https://chat.example.com"
    )
    await assert_accepted(
        owner, conversation, host="127.0.0.1:8000", origin="https://eu.example.org"
    )
    await assert_refused(
        owner, conversation, host="127.0.0.1:8000", origin="http://chat.example.com"
    )
    await assert_refused(owner, conversation, host="127.0.0.1:8000", origin="http://eu.example.org")


async def test_a_host_outside_allowed_hosts_is_refused_even_from_its_own_origin(
    owner, conversation, site
):
    """DNS rebinding: the attacker's name is made to point at the server, so the page and the
    socket share an origin the browser considers the attacker's. Only ALLOWED_HOSTS tells the
    site's names from any other that reaches it."""
    await assert_refused(
        owner,
        conversation,
        host="rebound.example.net:8000",
        origin="http://rebound.example.net:8000",
    )


async def test_a_socket_without_an_origin_is_refused(owner, conversation, site):
    """No Origin header: not a page of the site (a browser always sends one with a socket)."""
    await assert_refused(owner, conversation, host=SITE, origin="")
