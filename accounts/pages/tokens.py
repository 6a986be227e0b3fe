"""/token: the person's API keys — list, create, edit, enable/disable, delete, show and copy."""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError

from accounts import serializers as s
from accounts.models import TOKEN_DISABLED, TOKEN_ENABLED, Token, User
from accounts.services import groups, tokens
from newapi_site.api.base import ApiError

from .common import PAGE_SIZES, fail, page_of, query_without, show, signed_in
from .refusals import readable

TEXT_FIELDS = ("name", "remain_quota", "model_limits", "allow_ips", "group")


def _expiry_to_ts(raw: str) -> int:
    """datetime-local (UTC) to a Unix time; empty means never (-1)."""
    raw = raw.strip()
    if not raw:
        return -1
    try:
        moment = datetime.datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(_("Invalid expiry time")) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp())


def _ts_to_expiry(ts: int) -> str:
    if ts == -1:
        return ""
    return datetime.datetime.fromtimestamp(ts, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M")


def _body(request: HttpRequest) -> dict[str, Any]:
    """The form, shaped as the JSON `/api/token` takes (same field names, same validation)."""
    data: dict[str, Any] = {k: request.POST.get(k, "") for k in TEXT_FIELDS}
    data["remain_quota"] = data["remain_quota"] or 0
    data["unlimited_quota"] = request.POST.get("unlimited_quota") == "on"
    data["model_limits_enabled"] = request.POST.get("model_limits_enabled") == "on"
    data["expired_time"] = _expiry_to_ts(request.POST.get("expired_time", ""))
    data["budget_period"] = request.POST.get("budget_period", "")
    data["budget_quota"] = request.POST.get("budget_quota") or None
    return data


def _row(token: Token) -> dict[str, Any]:
    row = s.render_token(token)
    row["full_key"] = "sk-" + token.key
    row["enabled"] = token.status == TOKEN_ENABLED
    row["expiry_input"] = _ts_to_expiry(token.expired_time)
    return row


def _act(request: HttpRequest, user: User) -> None:
    action = request.POST.get("action", "")
    token_id = int(request.POST.get("id") or 0)
    if action == "create":
        token = tokens.create_token(user, s.validated(s.TokenBody, _body(request)))
        messages.success(request, _("Token created: %(key)s") % {"key": "sk-" + token.key})
    elif action == "update":
        tokens.update_token(user, token_id, s.validated(s.TokenBody, _body(request)))
        messages.success(request, _("Token saved"))
    elif action in ("enable", "disable"):
        status = TOKEN_ENABLED if action == "enable" else TOKEN_DISABLED
        tokens.set_token_status(user, token_id, status)
        messages.success(request, _("Token enabled") if action == "enable" else _("Token disabled"))
    elif action == "delete":
        tokens.delete_token(user, token_id)
        messages.success(request, _("Token deleted"))


@signed_in
def token_page(request: HttpRequest, user: User) -> HttpResponse:
    if request.method == "POST":
        try:
            _act(request, user)
        except (ApiError, ValidationError, ValueError) as exc:
            fail(request, exc)
        return HttpResponseRedirect(request.get_full_path())
    keyword = request.GET.get("keyword", "").strip()
    qs = tokens.tokens_of(user).order_by("-id")
    if keyword:
        qs = qs.filter(name__contains=keyword)
    page, size = page_of(request, qs)
    editing = None
    if request.GET.get("edit"):
        try:
            editing = _row(tokens.get_own_token(user, int(request.GET["edit"])))
        except (ApiError, ValueError) as exc:
            fail(request, exc)
    return show(
        request,
        "console/token.html",
        {
            "page": page,
            "rows": [_row(t) for t in page.object_list],
            "page_size": size,
            "page_sizes": PAGE_SIZES,
            "keyword": keyword,
            "keep": query_without(request, "p", "edit"),
            "groups": {name: readable(desc) for name, desc in groups.usable_groups(user.group).items()},
            "editing": editing,
            "budget_periods": [("day", _("Daily")), ("week", _("Weekly")), ("month", _("Monthly"))],
        },
    )
