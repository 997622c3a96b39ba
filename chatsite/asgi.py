"""ASGI entry point: HTTP and WebSocket, served by daphne."""

from __future__ import annotations

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

# Django must be set up before anything that imports models is imported.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402
from django.conf import settings  # noqa: E402

from chatsite.origins import SiteOriginValidator  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The page's own origin only (or a CSRF-trusted one): chatsite/origins.py. The
        # session's user is read by the socket itself, with its conversation (consumers.py).
        "websocket": SiteOriginValidator(SessionMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)


# The collector, tuned for a server holding many replies in flight (`CHAT_GC_TUNING`, on by
# default, off in tests). Everything loaded so far (Django, the apps, the SDK) lives as long as
# the process: frozen, a full collection no longer walks it (unfrozen, a full collection walks
# about 165,000 objects and holds the interpreter, every thread of the process, for about 80 ms
# here; an import's thousands of rows set one off every dozen pieces, and another user's reply
# waited for it). A young collection every 20,000 new objects instead of 700 runs a few times a
# second at a few hundred streams, when most of the objects of requests in flight are gone. What
# outlives a young collection and then dies in a cycle (a socket's protocol objects in daphne and
# autobahn refer to each other) is freed by the next middle collection: one every fourth young
# one, so that such garbage waits for at most 80,000 allocations, not the 420,000 of a threshold
# of 20 (under steady load the process grew by 7 MB per 1,000 replies that way: bench/soak.py).
# docs/benchmarks.md measures it all switched off.
GC_THRESHOLDS = (20_000, 2, 10)


def tune_collector() -> None:
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


if settings.CHAT_GC_TUNING:
    tune_collector()
