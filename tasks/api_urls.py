"""tasks' `/api` routes: the Midjourney and async task lists."""

from __future__ import annotations

from django.urls import URLPattern

from newapi_site.api.base import route

from . import api

urlpatterns: list[URLPattern] = [
    route("mj/self", api.MidjourneySelfView),
    route("mj", api.MidjourneyAllView),
    route("task/self", api.TaskSelfView),
    route("task", api.TaskAllView),
]
