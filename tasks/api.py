"""GET /api/mj/, /api/mj/self, /api/task/, /api/task/self.

`p` is 0-based with a fixed page of 10, newest first. /self lists only the caller's rows and
ignores user/channel filters; the admin lists accept them. Timestamps filter `submit_time`
inclusively, in the unit the rows store (Midjourney-Proxy: ms; tasks: s).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.request import Request
from rest_framework.response import Response

from newapi_site.api.base import ADMIN, ApiView, int_param, ok
from newapi_site.options import options

from .models import Midjourney, Task

PAGE_SIZE = 10
MJ_FIELDS = (
    "id",
    "code",
    "user_id",
    "action",
    "mj_id",
    "prompt",
    "prompt_en",
    "description",
    "state",
    "submit_time",
    "start_time",
    "finish_time",
    "image_url",
    "status",
    "progress",
    "fail_reason",
    "channel_id",
    "quota",
    "buttons",
    "properties",
)
TASK_FIELDS = (
    "id",
    "created_at",
    "updated_at",
    "task_id",
    "platform",
    "user_id",
    "channel_id",
    "quota",
    "action",
    "status",
    "fail_reason",
    "submit_time",
    "start_time",
    "finish_time",
    "progress",
    "properties",
    "data",
)


def render_mj(row: Midjourney) -> dict[str, Any]:
    data = {f: getattr(row, f) for f in MJ_FIELDS}
    if row.image_url and options.get_bool("MjForwardUrlEnabled"):
        data["image_url"] = f"{options.get('ServerAddress', '').rstrip('/')}/mj/image/{row.mj_id}"
    return data


def render_task(row: Task) -> dict[str, Any]:
    return {f: getattr(row, f) for f in TASK_FIELDS}


def _exact(request: Request, qs: QuerySet, names: dict[str, str]) -> QuerySet:
    """Filter by each query parameter present (param name → column)."""
    for param, column in names.items():
        value = request.query_params.get(param, "").strip()
        if value:
            qs = qs.filter(**{column: value})
    return qs


def _int_exact(request: Request, qs: QuerySet, names: tuple[str, ...]) -> QuerySet:
    for name in names:
        if request.query_params.get(name, "").strip():
            qs = qs.filter(**{name: int_param(request, name, -1)})
    return qs


def _time_range(request: Request, qs: QuerySet) -> QuerySet:
    start, end = int_param(request, "start_timestamp"), int_param(request, "end_timestamp")
    if start:
        qs = qs.filter(submit_time__gte=start)
    if end:
        qs = qs.filter(submit_time__lte=end)
    return qs


def _page(request: Request, qs: QuerySet, render) -> Response:
    p = max(int_param(request, "p", 0), 0)
    return ok([render(row) for row in qs.order_by("-id")[p * PAGE_SIZE : (p + 1) * PAGE_SIZE]])


class MidjourneySelfView(ApiView):
    def get(self, request: Request) -> Response:
        qs = _exact(request, Midjourney.objects.filter(user_id=request.user.pk), {"mj_id": "mj_id"})
        return _page(request, _time_range(request, qs), render_mj)


class MidjourneyAllView(ApiView):
    min_role = ADMIN

    def get(self, request: Request) -> Response:
        qs = _int_exact(
            request, _exact(request, Midjourney.objects.all(), {"mj_id": "mj_id"}), ("channel_id", "user_id")
        )
        return _page(request, _time_range(request, qs), render_mj)


TASK_FILTERS = {"platform": "platform", "task_id": "task_id", "status": "status", "action": "action"}


class TaskSelfView(ApiView):
    def get(self, request: Request) -> Response:
        qs = _exact(request, Task.objects.filter(user_id=request.user.pk), TASK_FILTERS)
        return _page(request, _time_range(request, qs), render_task)


class TaskAllView(ApiView):
    min_role = ADMIN

    def get(self, request: Request) -> Response:
        qs = _int_exact(request, _exact(request, Task.objects.all(), TASK_FILTERS), ("channel_id", "user_id"))
        return _page(request, _time_range(request, qs), render_task)
