"""Conventions shared by every `/api/*` view.

- Envelope `{"success", "message", "data"}` with HTTP 200, also for most errors (New API's UI expects it).
- 401 for "not logged in" and a missing or mismatched `New-Api-User` header.
- Roles come from the database on every request (the authentication class in settings), so a ban or
  demotion bites at once.
- DRF's APIView is CSRF-exempt and our authentication class does not enforce CSRF: scripts send the
  session cookie (SameSite=Strict) or an access token plus `New-Api-User`, as with New API.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, re_path
from django.views import View
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from newapi_site.roles import ROLE_ADMIN, ROLE_COMMON, ROLE_ROOT, USER_ENABLED

from .ratelimit import GlobalApiThrottle

PUBLIC, USER, ADMIN, ROOT = None, ROLE_COMMON, ROLE_ADMIN, ROLE_ROOT


def route(pattern: str, view: type[View], name: str | None = None) -> URLPattern:
    """An `/api` route: `pattern` is a regex body without anchors; the trailing slash is optional
    (scripts use both, and a redirect would lose a POST body)."""
    return re_path(rf"^{pattern}/?$", view.as_view(), name=name)


class ApiError(Exception):
    """A service refusal: becomes `{"success": false, "message": ...}` (HTTP 200 unless told)."""

    def __init__(self, message: str, status: int = 200, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.data = data


def ok(data: Any = None, message: str = "") -> Response:
    body: dict[str, Any] = {"success": True, "message": message}
    if data is not None:
        body["data"] = data
    return Response(body)


def fail(message: str, status: int = 200, data: Any = None) -> Response:
    body: dict[str, Any] = {"success": False, "message": message}
    if data is not None:
        body["data"] = data
    return Response(body, status=status)


class ApiView(APIView):
    """Base view: `roles` maps an HTTP method to the minimum role (PUBLIC = no login needed)."""

    min_role: int | None = USER
    roles: dict[str, int | None] = {}
    throttle_classes = [GlobalApiThrottle]

    def required_role(self, request: Request) -> int | None:
        return self.roles.get(request.method, self.min_role)

    def perform_authentication(self, request: Request) -> None:
        if self.required_role(request) is not PUBLIC:
            request.user  # noqa: B018 - runs the authenticators now, so failures are 401s

    def check_permissions(self, request: Request) -> None:
        role = self.required_role(request)
        if role is PUBLIC:
            return
        user = request.user  # the accounts user, or None (UNAUTHENTICATED_USER)
        if user is None:
            raise exceptions.NotAuthenticated("无权进行此操作，未登录且未提供 access token")
        if user.status != USER_ENABLED:
            raise ApiError("用户已被封禁")
        if user.role < role:
            raise ApiError("权限不足")

    def optional_user(self, request: Request) -> Any:
        """The caller on a public route, or None when not (validly) logged in."""
        try:
            user = request.user
        except exceptions.APIException:
            return None
        return user if user is not None and user.status == USER_ENABLED else None

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ApiError):
            return fail(exc.message, exc.status, exc.data)
        if isinstance(exc, exceptions.Throttled):
            return Response(status=429)
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            return fail(str(exc.detail), 401)
        if isinstance(exc, exceptions.ParseError):
            return fail("无效的参数")
        if isinstance(exc, exceptions.ValidationError):
            return fail(first_error(exc.detail))
        if isinstance(exc, exceptions.NotFound):
            return fail("记录不存在")
        if isinstance(exc, exceptions.MethodNotAllowed):
            return fail(str(exc.detail), 405)
        return super().handle_exception(exc)


def first_error(detail: Any) -> str:
    """One stable message out of a DRF error tree: the first field error, prefixed by its field."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            message = first_error(value)
            return message if field == "non_field_errors" else f"{field}: {message}"
    if isinstance(detail, list) and detail:
        return first_error(detail[0])
    return str(detail)


# -- request parsing ---------------------------------------------------------------------
def body(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise ApiError("无效的参数")
    return data


def int_param(request: Request, name: str, default: int = 0) -> int:
    raw = request.query_params.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        return default


def int_value(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ApiError(f"无效的参数: {name}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(f"无效的参数: {name}") from None


def int_path(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ApiError("无效的参数") from None


# -- pagination (New API differs per endpoint; see management.md §3.1) ----------------------
MAX_PAGE_SIZE = 100


def _page_size(request: Request, name: str = "page_size") -> int:
    size = int_param(request, name, 10)
    return 10 if size < 1 else min(size, MAX_PAGE_SIZE)


def page_one_based(request: Request) -> tuple[int, int]:
    """users, logs, redemptions: `p` is 1-based (p=0 is treated as 1), `page_size` defaults to 10."""
    return max(int_param(request, "p", 1), 1), _page_size(request)


def page_zero_based(request: Request, size_param: str = "page_size") -> tuple[int, int]:
    """channels (`page_size`) and tokens (`size`): `p` is 0-based."""
    return max(int_param(request, "p", 0), 0), _page_size(request, size_param)


def paged_envelope(queryset, page: int, page_size: int, render) -> dict[str, Any]:
    start = (page - 1) * page_size
    items = [render(row) for row in queryset[start : start + page_size]]
    return {"items": items, "total": queryset.count(), "page": page, "page_size": page_size}
