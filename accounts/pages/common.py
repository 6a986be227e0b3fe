"""What every console page shares: the signed-in person, the redirect to /login, error texts."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from rest_framework.exceptions import ValidationError

from accounts import sessions
from accounts.models import User
from newapi_site.api.base import ApiError
from newapi_site.roles import USER_ENABLED

from .refusals import readable

PAGE_SIZES = (10, 20, 50, 100)
USER_ATTR = "console_user"


def page_user(request: HttpRequest) -> User | None:
    """The session's user, read as `/api` reads it: live, enabled, and under the current password."""
    if hasattr(request, USER_ATTR):
        cached: User | None = getattr(request, USER_ATTR)
        return cached
    user_id = request.session.get("id")
    user = User.live.filter(pk=user_id, status=USER_ENABLED).first() if user_id else None
    if user is not None and not sessions.is_current(request.session, user):
        user = None
    setattr(request, USER_ATTR, user)
    return user


View = Callable[..., HttpResponse]


def signed_in(view: View) -> View:
    """Signed-out visits go to /login and come back here after signing in."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = page_user(request)
        if user is None:
            return HttpResponseRedirect("/login?" + urlencode({"next": request.get_full_path()}))
        return view(request, user, *args, **kwargs)

    return wrapper


def safe_next(request: HttpRequest, default: str = "/detail") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=False):
        return target
    return default


def error_text(exc: Exception) -> str:
    """A service refusal or a field error, as one line for the page."""
    if isinstance(exc, ApiError):
        return readable(exc.message)
    if isinstance(exc, ValidationError):
        return "; ".join(_flatten(exc.detail))
    return str(exc)


def _flatten(detail: Any, field: str = "") -> list[str]:
    if isinstance(detail, dict):
        return [line for name, value in detail.items() for line in _flatten(value, str(name))]
    if isinstance(detail, list):
        return [line for value in detail for line in _flatten(value, field)]
    return [f"{field}: {detail}" if field and field != "non_field_errors" else str(detail)]


def fail(request: HttpRequest, exc: Exception) -> None:
    messages.error(request, error_text(exc))


def page_of(request: HttpRequest, items: Any, default_size: int = 10) -> tuple[Page, int]:
    """A page of `items` by `?p=` (1-based) and `?page_size=` from the selector."""
    try:
        size = int(request.GET.get("page_size") or default_size)
    except ValueError:
        size = default_size
    size = size if size in PAGE_SIZES else default_size
    paginator = Paginator(items, size)
    return paginator.get_page(request.GET.get("p") or 1), size


def query_without(request: HttpRequest, *names: str) -> str:
    """The current query string minus `names`, for pager links that keep the filters."""
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()


def show(request: HttpRequest, template: str, context: dict[str, Any] | None = None) -> HttpResponse:
    return render(request, template, context or {})
