from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from .accounts import signup_open

# Set by the demo notice's ✕ (static/js/banner.js): the notice is left out from then on.
DEMO_BANNER_COOKIE = "demo_notice"


def chat(request: HttpRequest) -> dict[str, Any]:
    return {
        "demo_mode": settings.DEMO_MODE,
        "demo_banner": settings.DEMO_MODE
        and request.COOKIES.get(DEMO_BANNER_COOKIE) != "dismissed",
        "demo_banner_cookie": DEMO_BANNER_COOKIE,
        "allow_signup": signup_open(),
        # Local passwords (login form, reset, change) and single sign-on's button.
        "password_login": not settings.SOCIALACCOUNT_ONLY,
        "sso": bool(settings.OIDC_SERVER_URL),
        "sso_name": settings.OIDC_NAME,
        # Share links (CHAT_SHARING): the Share button and the list of one's links.
        "sharing": settings.CHAT_SHARING,
    }
