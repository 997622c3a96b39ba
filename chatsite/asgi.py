"""ASGI entry point: HTTP and WebSocket, served by daphne."""

from __future__ import annotations

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

# Django must be set up before anything that imports models is imported.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chatsite.origins import SiteOriginValidator  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The page's own origin only (or a CSRF-trusted one): chatsite/origins.py.
        "websocket": SiteOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)


# The collector, tuned for a server holding many replies in flight. Everything loaded so far
# (Django, the apps, the SDK and its models: most of the process's objects) lives as long as
# the process: frozen, a full collection no longer walks it (it took 80 to 120 ms at a time,
# every reply waiting). A young collection every 700 new objects, at a few hundred streams,
# ran many times a second and moved the objects of requests in flight into the old
# generations, where only a full collection frees them; every 20,000 it runs a few times a
# second and most of them are gone by then. docs/benchmarks.md has the figures.
GC_THRESHOLDS = (20_000, 20, 20)
gc.freeze()
gc.set_threshold(*GC_THRESHOLDS)
