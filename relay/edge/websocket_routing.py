"""Websocket routes (the Realtime API relay lives in relay/modes/realtime.py)."""

from __future__ import annotations

from channels.routing import URLRouter
from django.urls import re_path

from relay.modes.realtime import RealtimeConsumer

websocket_urlpatterns: list = [re_path(r"^v1/realtime/?$", RealtimeConsumer.as_asgi())]
websocket_application = URLRouter(websocket_urlpatterns)
