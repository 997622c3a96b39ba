"""The chat socket's Origin check: the rule Django's CSRF check applies to a POST's Origin.

A browser sends the session cookie with a WebSocket handshake whatever page opened it, and the
page's origin in the `Origin` header. So a socket is accepted only from the site's own origin,
the scheme, host and port this very request reached the site by (its `Host` among
DJANGO_ALLOWED_HOSTS), or from an origin listed in DJANGO_CSRF_TRUSTED_ORIGINS: what
`CsrfViewMiddleware` accepts. Comparing hosts alone (channels' AllowedHostsOriginValidator)
let a page on the same host but another port or scheme read a user's conversations.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain


class SiteOriginValidator:
    """ASGI middleware: refuses a socket, before it is accepted, from any other origin."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        headers = {
            name.decode("latin1"): value.decode("latin1")
            for name, value in scope.get("headers", [])
        }
        origin = headers.get("origin")
        if origin is not None and (
            origin == site_origin(scope, headers) or is_trusted_origin(origin)
        ):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)


def site_origin(scope: dict[str, Any], headers: dict[str, str]) -> str | None:
    """The origin this request reached the site by, as `HttpRequest` works it out: None when
    its host is not one of ALLOWED_HOSTS."""
    host = headers.get("host", "")
    if settings.USE_X_FORWARDED_HOST and "x-forwarded-host" in headers:
        host = headers["x-forwarded-host"]
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, allowed_hosts):
        return None
    return f"{scheme(scope, headers)}://{host}"


def scheme(scope: dict[str, Any], headers: dict[str, str]) -> str:
    """`https` or `http`: the proxy's word where SECURE_PROXY_SSL_HEADER trusts it (DJANGO_HTTPS),
    else the connection's own (`wss` or `ws`)."""
    if settings.SECURE_PROXY_SSL_HEADER:
        name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        forwarded = headers.get(name.removeprefix("HTTP_").replace("_", "-").lower())
        if forwarded is not None:
            return "https" if forwarded.split(",", 1)[0].strip() == secure_value else "http"
    return "https" if scope.get("scheme") == "wss" else "http"


def is_trusted_origin(origin: str) -> bool:
    """Listed in CSRF_TRUSTED_ORIGINS, where `https://*.example.com` covers the subdomains."""
    trusted = settings.CSRF_TRUSTED_ORIGINS
    if origin in trusted:
        return True
    try:
        parsed = urlsplit(origin)
    except ValueError:
        return False
    for pattern in trusted:
        if "*" in pattern:
            wildcard = urlsplit(pattern)
            subdomains = wildcard.netloc.lstrip("*")
            if wildcard.scheme == parsed.scheme and is_same_domain(parsed.netloc, subdomains):
                return True
    return False
