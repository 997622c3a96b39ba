"""Project-wide HTTP middleware."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

# No inline script, no eval, nothing from another origin: model output can never run code.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def content_security_policy() -> str:
    """The policy, and single sign-on's identity provider as a form's target: its button posts
    here, and the redirect that follows leaves for the provider's origin (browsers hold a
    form's redirects to `form-action` too)."""
    if not settings.OIDC_SERVER_URL:
        return CONTENT_SECURITY_POLICY
    parts = urlsplit(settings.OIDC_SERVER_URL)
    return CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}"
    )


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = content_security_policy()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # The admin ships inline scripts and styles of its own; it is for trusted staff.
        if not request.path.startswith("/admin/"):
            response.headers.setdefault("Content-Security-Policy", self.policy)
        return response


# The cookie static/js/timezone.js keeps the browser's time zone in (an IANA name).
TIME_ZONE_COOKIE = "tz"


@functools.lru_cache(maxsize=64)
def browser_zone(value: str) -> zoneinfo.ZoneInfo | None:
    """The time zone a cookie names; None for a name that is none (the server's zone then)."""
    name = unquote(value)
    if not name or len(name) > 64:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return None


class TimeZoneMiddleware:
    """Times written into pages in the reader's time zone, as the pages' scripts write theirs
    (Django's documented way: `timezone.activate` per request)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = browser_zone(request.COOKIES.get(TIME_ZONE_COOKIE, ""))
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        return self.get_response(request)
