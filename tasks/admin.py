"""The console's async task pages (Midjourney, Suno): read-only, the poller owns these rows."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from newapi_site.admin_common import ReadOnlyAdmin, format_ts, time_range_filter, user_link, with_username

from .models import Midjourney, Task


def _short(text: str | None, limit: int = 60) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@admin.register(Midjourney)
class MidjourneyAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "mj_id",
        "user_column",
        "action",
        "status",
        "progress",
        "submitted",
        "finished",
        "channel_id",
        "quota",
        "failure",
    ]
    list_display_links = ["id", "mj_id"]
    # Midjourney-Proxy reports times in milliseconds.
    list_filter = ["status", "action", time_range_filter("submit_time", _("submitted"), millis=True)]
    search_fields = ["mj_id", "prompt", "description"]
    ordering = ["-id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return with_username(super().get_queryset(request))

    @admin.display(description=_("user"), ordering="username_")
    def user_column(self, obj: Midjourney) -> str:
        return user_link(obj.user_id, getattr(obj, "username_", None))

    @admin.display(description=_("submitted"), ordering="submit_time")
    def submitted(self, obj: Midjourney) -> str:
        return format_ts(obj.submit_time, millis=True)

    @admin.display(description=_("finished"), ordering="finish_time")
    def finished(self, obj: Midjourney) -> str:
        return format_ts(obj.finish_time, millis=True)

    @admin.display(description=_("fail reason"))
    def failure(self, obj: Midjourney) -> str:
        return _short(obj.fail_reason)


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "task_id",
        "platform",
        "user_column",
        "action",
        "status",
        "progress",
        "submitted",
        "finished",
        "channel_id",
        "quota",
        "failure",
    ]
    list_display_links = ["id", "task_id"]
    list_filter = ["status", "action", "platform", time_range_filter("submit_time", _("submitted"))]
    search_fields = ["task_id"]
    ordering = ["-id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return with_username(super().get_queryset(request))

    @admin.display(description=_("user"), ordering="username_")
    def user_column(self, obj: Task) -> str:
        return user_link(obj.user_id, getattr(obj, "username_", None))

    @admin.display(description=_("submitted"), ordering="submit_time")
    def submitted(self, obj: Task) -> str:
        return format_ts(obj.submit_time)

    @admin.display(description=_("finished"), ordering="finish_time")
    def finished(self, obj: Task) -> str:
        return format_ts(obj.finish_time)

    @admin.display(description=_("fail reason"))
    def failure(self, obj: Task) -> str:
        return _short(obj.fail_reason)
