"""Every `/api/*` route. The management API lives in accounts/, billing/ and relay/ views."""

from __future__ import annotations

from django.urls import path

urlpatterns: list = []
