"""Cloudflare Turnstile check (management.md §3.1) for verification, reset_password, register and login.

When the option TurnstileCheckEnabled is on, the `turnstile` query token is verified with
Cloudflare (settings.TURNSTILE_VERIFY_URL) once per session: success sets session
`turnstile=true` and later calls skip the check.
"""

from __future__ import annotations

import logging

import httpx
from django.conf import settings
from rest_framework.request import Request

from newapi_site.api.base import ApiError
from newapi_site.api.ratelimit import client_ip
from newapi_site.options import options

log = logging.getLogger("newapi.api")
SESSION_KEY = "turnstile"


def verify_token(token: str, remote_ip: str) -> bool:
    try:
        resp = httpx.post(
            settings.TURNSTILE_VERIFY_URL,
            data={"secret": options.get("TurnstileSecretKey", ""), "response": token, "remoteip": remote_ip},
            timeout=10.0,
        )
        return bool(resp.json().get("success"))
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        log.warning("turnstile verification failed to complete: %s", exc)
        raise ApiError("Turnstile 校验请求失败，请稍后重试 (verification service unavailable)") from None


def check_turnstile(request: Request) -> None:
    if not options.get_bool("TurnstileCheckEnabled"):
        return
    session = request._request.session
    if session.get(SESSION_KEY):
        return
    token = request.query_params.get("turnstile", "").strip()
    if not token:
        raise ApiError("Turnstile token 为空")
    if not verify_token(token, client_ip(request._request)):
        raise ApiError("Turnstile 校验失败，请刷新重试！")
    session[SESSION_KEY] = True


class TurnstileMixin:
    """For ApiViews: runs after authentication, permissions and rate limits, before the handler."""

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        check_turnstile(request)
