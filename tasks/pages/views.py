"""/midjourney and /task: the person's own drawing and music tasks, with their images and audio."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from accounts.models import User
from accounts.pages.common import PAGE_SIZES, page_of, query_without, show, signed_in
from tasks.api import render_mj, render_task
from tasks.models import Midjourney, Task


def _media(data: Any, key: str) -> list[str]:
    """URLs under `key` in a task's upstream data (Suno answers a list of clips)."""
    items = data if isinstance(data, list) else [data]
    return [str(item[key]) for item in items if isinstance(item, dict) and item.get(key)]


@signed_in
def midjourney(request: HttpRequest, user: User) -> HttpResponse:
    qs = Midjourney.objects.filter(user_id=user.pk).order_by("-id")
    mj_id = request.GET.get("mj_id", "").strip()
    if mj_id:
        qs = qs.filter(mj_id=mj_id)
    page, size = page_of(request, qs)
    return show(
        request,
        "console/midjourney.html",
        {
            "page": page,
            "rows": [render_mj(row) for row in page.object_list],
            "page_size": size,
            "page_sizes": PAGE_SIZES,
            "keep": query_without(request, "p"),
            "mj_id": mj_id,
        },
    )


@signed_in
def task(request: HttpRequest, user: User) -> HttpResponse:
    qs = Task.objects.filter(user_id=user.pk).order_by("-id")
    task_id = request.GET.get("task_id", "").strip()
    if task_id:
        qs = qs.filter(task_id=task_id)
    page, size = page_of(request, qs)
    rows = []
    for row in page.object_list:
        item = render_task(row)
        item["audio"] = _media(row.data, "audio_url")
        item["images"] = _media(row.data, "image_url")
        rows.append(item)
    return show(
        request,
        "console/task.html",
        {
            "page": page,
            "rows": rows,
            "page_size": size,
            "page_sizes": PAGE_SIZES,
            "keep": query_without(request, "p"),
            "task_id": task_id,
        },
    )
