"""Audit trail: who changed what and when, from the admin and from `/api`, kept in Django's admin log.

The admin already records its own additions, edits and deletions; this adds its bulk actions, the
changes of the custom admin views (`record`), and every successful writing call to `/api` by a
signed-in caller. Only field names and ids are stored, never values, so no password or key ends up
in the trail.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.http import HttpRequest, HttpResponse

WRITES = {"POST": ADDITION, "PUT": CHANGE, "PATCH": CHANGE, "DELETE": DELETION}
# Signing in and out, sign-up, mail codes and payment callbacks are not changes made by a caller.
NOT_AUDITED = (
    "/api/user/login",
    "/api/user/register",
    "/api/user/logout",
    "/api/user/epay/notify",
    "/api/setup",
)
MAX_IDS = 200
MAX_BODY = 256 * 1024  # larger bodies (imports, uploads) are recorded without their field names


def _body_summary(request: HttpRequest) -> dict[str, Any]:
    """The field names a call sent, and the ids it named (values are left out on purpose)."""
    try:
        data: Any = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    if isinstance(data, list):
        return {"items": len(data)}
    if not isinstance(data, dict):
        return {}
    summary: dict[str, Any] = {"fields": sorted(str(k) for k in data)}
    for key in ("id", "ids"):
        if key in data and isinstance(data[key], int | list):
            summary[key] = data[key] if isinstance(data[key], int) else data[key][:MAX_IDS]
    return summary


def _succeeded(response: HttpResponse) -> bool:
    if response.status_code >= 400:
        return False
    if response.get("Content-Type", "").startswith("application/json"):
        try:
            payload = json.loads(response.content)
        except ValueError:
            return True
        return not (isinstance(payload, dict) and payload.get("success") is False)
    return True


class AuditMiddleware:
    """Records each successful writing `/api` call of a signed-in caller (sync and async stacks)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        summary = _before(request)
        response = self.get_response(request)
        entry = _entry(request, response, summary)
        if entry is not None:
            LogEntry.objects.create(**entry)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        summary = _before(request)
        response = await self.get_response(request)
        entry = _entry(request, response, summary)
        if entry is not None:
            await LogEntry.objects.acreate(**entry)
        return response


def _before(request: HttpRequest) -> dict[str, Any] | None:
    """None when the call is not audited; else what its body named (read before the view runs)."""
    if (
        request.method not in WRITES
        or not request.path.startswith("/api/")
        or request.path.startswith(NOT_AUDITED)
    ):
        return None
    small = int(request.headers.get("Content-Length") or 0) <= MAX_BODY
    json_body = request.content_type == "application/json"
    return _body_summary(request) if small and json_body else {}


def _entry(
    request: HttpRequest, response: HttpResponse, summary: dict[str, Any] | None
) -> dict[str, Any] | None:
    if summary is None or getattr(response, "streaming", False) or not _succeeded(response):
        return None
    actor = getattr(request, "user", None)  # DRF puts the caller it authenticated here
    if actor is None or not getattr(actor, "pk", None) or not getattr(actor, "is_authenticated", False):
        return None
    return {
        "user_id": actor.pk,
        "content_type": None,
        "object_id": str(summary.get("id", ""))[:200] or None,
        "object_repr": f"{request.method} {request.path}"[:200],
        "action_flag": WRITES[request.method or ""],
        "change_message": json.dumps({"api": summary}, ensure_ascii=False),
    }


def _audited_actions(model_admin: admin.ModelAdmin) -> None:
    """Bulk actions leave one entry naming the action and the rows it ran on."""
    respond = model_admin.response_action

    def response_action(
        request: HttpRequest, queryset: Any, *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        action = request.POST.get("action", "")
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        response = respond(request, queryset, *args, **kwargs)
        # delete_selected records each row itself once it is confirmed.
        if action and action != "delete_selected" and response is not None and request.user.pk:
            across = request.POST.get("select_across") == "1"
            LogEntry.objects.create(
                user_id=request.user.pk,
                content_type=_content_type(model_admin.model),
                object_id=None,
                object_repr=f"{action} ({'all matching' if across else len(selected)})"[:200],
                action_flag=CHANGE,
                change_message=json.dumps({"action": action, "ids": selected[:MAX_IDS], "all": across}),
            )
        return response

    model_admin.response_action = response_action  # type: ignore[method-assign]


def _content_type(target: type[Model] | Model) -> ContentType | None:
    """Read, not taken from the manager's per-process cache: a long-running process would otherwise
    keep an id that a flush of the table (as between tests) has made stale, and the insert would fail."""
    opts = target._meta.concrete_model._meta if target._meta.concrete_model else target._meta
    return ContentType.objects.filter(app_label=opts.app_label, model=opts.model_name).first()


def record(
    request: HttpRequest,
    target: type[Model] | Model,
    action: str,
    *,
    flag: int = CHANGE,
    **details: Any,
) -> None:
    """One entry for a change a custom admin view made: the admin logs only its own forms and actions.

    `target` is the row changed, or the model when the view made several rows; `details` are ids,
    counts and outcomes, never values such as keys.
    """
    user_id = getattr(request.user, "pk", None)
    if not user_id:
        return
    row = target if isinstance(target, Model) else None
    LogEntry.objects.create(
        user_id=user_id,
        content_type=_content_type(target),
        object_id=str(row.pk) if row is not None else None,
        object_repr=(f"{action}: {row}" if row is not None else action)[:200],
        action_flag=flag,
        change_message=json.dumps({"action": action, **details}, ensure_ascii=False),
    )


class AuditLogAdmin(admin.ModelAdmin):
    """The trail, read-only: nobody edits or deletes history from the console."""

    list_display = ["action_time", "user", "content_type", "object_repr", "action_flag", "change_message"]
    list_filter = ["action_flag", "content_type", "action_time"]
    search_fields = ["object_repr", "change_message", "user__username"]
    date_hierarchy = "action_time"
    list_select_related = ["user", "content_type"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def install(site: admin.AdminSite) -> None:
    """Audit the bulk actions of every list registered so far, and show the trail."""
    for model_admin in site._registry.values():
        _audited_actions(model_admin)
    if LogEntry not in site._registry:
        site.register(LogEntry, AuditLogAdmin)
