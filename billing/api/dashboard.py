"""OpenAI-style billing endpoints authenticated by an API key (management.md §4).

GET /v1/dashboard/billing/subscription and /usage (also without the /v1 prefix), used by key
checkers such as neko-api-key-tool. Responses carry no envelope.
"""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.models import TOKEN_ENABLED, TOKEN_EXHAUSTED, TOKEN_EXPIRED, Token, User
from newapi_site import cors
from newapi_site.api.ratelimit import allow_request, client_ip
from newapi_site.options import options
from newapi_site.roles import USER_ENABLED

UNLIMITED_AMOUNT = 100000000


class KeyError_(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"message": message, "type": "new_api_error"}}, status=status)


def token_from_request(request: HttpRequest) -> Token:
    header = request.headers.get("Authorization", "").strip()
    key = header.removeprefix("Bearer ").strip().removeprefix("sk-")
    key = key.split("-")[0]  # sk-<key>-<channel> pins a channel on the relay; irrelevant here
    if not key:
        raise KeyError_("未提供令牌", 401)
    token = Token.live.filter(key=key).first()
    if token is None:
        raise KeyError_("无效的令牌", 401)
    now = int(time.time())
    if token.status == TOKEN_EXHAUSTED or (not token.unlimited_quota and token.remain_quota <= 0):
        raise KeyError_("该令牌额度已用尽", 403)
    if token.status == TOKEN_EXPIRED or (token.expired_time != -1 and token.expired_time < now):
        raise KeyError_("该令牌已过期", 403)
    if token.status != TOKEN_ENABLED:
        raise KeyError_("该令牌状态不可用", 403)
    if not User.live.filter(pk=token.user_id, status=USER_ENABLED).exists():
        raise KeyError_("用户已被封禁", 403)
    return token


def _guarded(view):
    @csrf_exempt
    @require_http_methods(["GET", "OPTIONS"])
    def wrapper(request: HttpRequest) -> HttpResponse:
        from django.conf import settings

        if request.method == "OPTIONS":
            return cors.preflight()

        if settings.GLOBAL_API_RATE_LIMIT_ENABLE and not allow_request(
            "GA", client_ip(request), settings.GLOBAL_API_RATE_LIMIT, settings.GLOBAL_API_RATE_LIMIT_DURATION
        ):
            return JsonResponse({}, status=429)
        try:
            token = token_from_request(request)
        except KeyError_ as exc:
            return cors.add_headers(_error(exc.message, exc.status))
        return cors.add_headers(view(request, token))

    return wrapper


def _to_amount(quota: int) -> float:
    if options.get_bool("DisplayInCurrencyEnabled"):
        return quota / (options.get_float("QuotaPerUnit", 500000) or 500000)
    return float(quota)


@_guarded
def subscription(request: HttpRequest, token: Token) -> JsonResponse:
    if options.get_bool("DisplayTokenStatEnabled"):
        total = token.remain_quota + token.used_quota
        access_until = 0 if token.expired_time == -1 else token.expired_time
    else:
        user = User.objects.get(pk=token.user_id)
        total = user.quota + user.used_quota
        access_until = 0
    amount = UNLIMITED_AMOUNT if token.unlimited_quota else _to_amount(total)
    return JsonResponse(
        {
            "object": "billing_subscription",
            "has_payment_method": True,
            "soft_limit_usd": amount,
            "hard_limit_usd": amount,
            "system_hard_limit_usd": amount,
            "access_until": access_until,
        }
    )


@_guarded
def usage(request: HttpRequest, token: Token) -> JsonResponse:
    if options.get_bool("DisplayTokenStatEnabled"):
        used = token.used_quota
    else:
        used = User.objects.filter(pk=token.user_id).values_list("used_quota", flat=True).first() or 0
    per_unit = options.get_float("QuotaPerUnit", 500000) or 500000
    return JsonResponse({"object": "list", "total_usage": used / per_unit * 100})
