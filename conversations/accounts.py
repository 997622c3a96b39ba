"""Logging in, throttled: failed attempts are counted per username and per address.

After `LOGIN_FAILURES_PER_USERNAME` failures for one username, or `LOGIN_FAILURES_PER_ADDRESS`
from one address, within `LOGIN_FAILURE_WINDOW_SECONDS`, the login form refuses to check any
password for that username or from that address until the window ends, and says so. The
password is not even looked at while refused, so guessing goes no faster by trying on.

The counts live in Django's cache: Redis when `REDIS_URL` is set, so every server process
shares them; otherwise the process's own memory (one process, as without Redis anyway).

The same form guards the admin's login page (see `chatsite/urls.py`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import ngettext

KEY_PREFIX = "login-failures"


def client_address(request: HttpRequest | None) -> str:
    """The address that failed, IPv6 by its /64 (one subscriber usually holds a whole /64).

    Behind a proxy this is the address daphne took from `X-Forwarded-For`
    (`daphne --proxy-headers`, see docs/deploy.md), not the proxy's own.
    """
    raw = (request.META.get("REMOTE_ADDR") or "") if request is not None else ""
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class Bucket:
    """Failures of one kind (a username, an address) in a fixed window from the first one."""

    def __init__(self, kind: str, identity: str, limit: int) -> None:
        digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:40]
        self.count_key = f"{KEY_PREFIX}:{kind}:{digest}:n"
        self.until_key = f"{KEY_PREFIX}:{kind}:{digest}:t"
        self.limit = limit

    def seconds_left(self) -> float:
        """How long this bucket still refuses, or 0."""
        values = cache.get_many([self.count_key, self.until_key])
        if values.get(self.count_key, 0) < self.limit:
            return 0.0
        return max(1.0, float(values.get(self.until_key, 0)) - time.time())

    def fail(self) -> None:
        window = settings.LOGIN_FAILURE_WINDOW_SECONDS
        # `add` only creates: the window starts at the first failure and is not extended.
        cache.add(self.until_key, time.time() + window, window)
        cache.add(self.count_key, 0, window)
        try:
            cache.incr(self.count_key)  # atomic in Redis and in the local-memory cache
        except ValueError:  # the window ended between the two calls
            cache.set(self.count_key, 1, window)

    def clear(self) -> None:
        cache.delete_many([self.count_key, self.until_key])


class LoginThrottle:
    def __init__(self, request: HttpRequest | None, username: str) -> None:
        self.by_username = Bucket(
            "username", username.casefold(), settings.LOGIN_FAILURES_PER_USERNAME
        )
        self.by_address = Bucket(
            "address", client_address(request), settings.LOGIN_FAILURES_PER_ADDRESS
        )

    def seconds_left(self) -> float:
        return max(self.by_username.seconds_left(), self.by_address.seconds_left())

    def failed(self) -> None:
        self.by_username.fail()
        self.by_address.fail()

    def succeeded(self) -> None:
        # The username's count starts again; the address's does not (one address trying
        # many usernames, with one of its own that works, is still guessing).
        self.by_username.clear()


def throttled_message(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext(
        "Too many failed attempts to log in. Try again in %(minutes)d minute.",
        "Too many failed attempts to log in. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


class ThrottledLoginMixin:
    """For an `AuthenticationForm`: refuse while throttled, count the failures."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]
    retry_after: float = 0.0

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        throttle = LoginThrottle(self.request, username)
        wait = throttle.seconds_left()
        if wait:
            self.retry_after = wait
            raise ValidationError(throttled_message(wait), code="throttled")
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except ValidationError as error:
            if username and getattr(error, "code", None) == "invalid_login":
                throttle.failed()
            raise
        if username:
            throttle.succeeded()
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass


class LoginView(auth_views.LoginView):
    """Django's login page with the throttled form: 429 and a sentence while refused."""

    authentication_form = ThrottledAuthenticationForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        form = context.get("form")
        if form is not None and getattr(form, "retry_after", 0):
            context["login_error"] = throttled_message(form.retry_after)
        return context

    def form_invalid(self, form: ThrottledAuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.retry_after:
            response.status_code = 429
            response.headers["Retry-After"] = str(math.ceil(form.retry_after))
        return response
