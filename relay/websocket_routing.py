"""Websocket routes (the Realtime API relay lives in relay/consumers.py)."""

from __future__ import annotations

from channels.routing import URLRouter

websocket_urlpatterns: list = []
websocket_application = URLRouter(websocket_urlpatterns)
