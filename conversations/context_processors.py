from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def chat(request: HttpRequest) -> dict[str, Any]:
    return {
        "demo_mode": settings.DEMO_MODE,
        "allow_signup": settings.ALLOW_SIGNUP,
    }
