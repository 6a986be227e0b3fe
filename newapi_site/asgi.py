"""ASGI entry point: the /v1 relay as a lean ASGI app, everything else through Django.

The relay hot path skips Django's request stack (measured at ~1 ms/request on this box, see
issue 7); the admin and the `/api` management API stay ordinary Django/DRF.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newapi_site.settings")

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

# Daphne serves no static files; the admin's CSS/JS come from the staticfiles finders.
django_app = ASGIStaticFilesHandler(get_asgi_application())

from channels.routing import ProtocolTypeRouter  # noqa: E402

import tasks.mj_routes  # noqa: E402,F401  (registers the /mj and /suno relay routes)
from relay.edge.asgi import RelayRouter  # noqa: E402
from relay.edge.websocket_routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": RelayRouter(fallback=django_app),
        "websocket": websocket_application,
    }
)
