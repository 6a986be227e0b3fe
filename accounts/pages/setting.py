"""/setting: profile, password, access token, notifications, invitations, bindings."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import auth, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError

from accounts import serializers as s
from accounts import sessions
from accounts.limits import check_int64
from accounts.models import User
from accounts.services import oauth, users
from accounts.services.email import bind_email, send_verification_code
from newapi_site.api.base import ApiError, int_value
from newapi_site.options import options

from .common import fail, show, signed_in


def _notification_body(request: HttpRequest) -> dict[str, Any]:
    raw = request.POST.get("quota_warning_threshold", "")
    try:
        threshold: Any = float(raw)
    except ValueError:
        threshold = None
    return {
        "notify_type": request.POST.get("notify_type", "email"),
        "quota_warning_threshold": threshold,
        "notification_email": request.POST.get("notification_email", ""),
        "webhook_url": request.POST.get("webhook_url", ""),
        "webhook_secret": request.POST.get("webhook_secret", ""),
        "accept_unset_model_ratio_model": request.POST.get("accept_unset_model_ratio_model") == "on",
    }


def _act(request: HttpRequest, user: User) -> str:
    """Runs one form's action; returns a one-time text to show (a new access token) or ''."""
    action = request.POST.get("action", "")
    if action == "profile":
        data = s.validated(
            s.SelfUpdateBody,
            {
                "username": request.POST.get("username", ""),
                "display_name": request.POST.get("display_name", ""),
            },
        )
        users.update_self(user, data)
        messages.success(request, _("Profile saved"))
    elif action == "password":
        if request.POST.get("password", "") != request.POST.get("password2", ""):
            raise ApiError(_("The two passwords differ"))
        data = s.validated(
            s.SelfUpdateBody,
            {
                "password": request.POST.get("password", ""),
                "original_password": request.POST.get("original_password", ""),
            },
        )
        # Read the admin sign-in before the change: afterwards it would no longer match the password.
        admin_signed_in = request.user.is_authenticated
        users.update_self(user, data)
        sessions.keep_after_password_change(request.session, user)
        if admin_signed_in:
            auth.update_session_auth_hash(request, user)  # the admin sign-in of this session stays too
        messages.success(request, _("Password changed"))
    elif action == "access_token":
        return users.generate_access_token(user)
    elif action == "notification":
        users.update_notification_setting(user, _notification_body(request))
        messages.success(request, _("Notification settings saved"))
    elif action == "aff_transfer":
        amount = check_int64(int_value(request.POST.get("quota"), "quota"), "quota")
        users.transfer_aff_quota(user, amount)
        messages.success(request, _("Invitation reward moved to your balance"))
    elif action == "email_code":
        send_verification_code(request.POST.get("email", ""))
        messages.success(request, _("A verification code was sent to your email"))
    elif action == "wechat_bind":
        oauth.bind_identity(user, oauth.wechat_identity(request.POST.get("code", "")))
        messages.success(request, _("Account bound"))
    elif action == "email_bind":
        bind_email(user, request.POST.get("email", ""), request.POST.get("code", ""))
        messages.success(request, _("Email bound"))
    return ""


@signed_in
def setting_page(request: HttpRequest, user: User) -> HttpResponse:
    access_token = ""
    if request.method == "POST":
        try:
            access_token = _act(request, user)
        except (ApiError, ValidationError) as exc:
            fail(request, exc)
        if not access_token:
            return HttpResponseRedirect("/setting")
        user.refresh_from_db()
    try:
        notify = json.loads(user.setting or "{}")
    except ValueError:
        notify = {}
    address = options.get("ServerAddress") or request.build_absolute_uri("/").rstrip("/")
    aff_code = users.ensure_aff_code(user)
    return show(
        request,
        "console/setting.html",
        {
            "u": user,
            "access_token": access_token,
            "notify": notify if isinstance(notify, dict) else {},
            "aff_link": f"{address}/register?aff={aff_code}",
            # The Telegram widget binds through /api/oauth/telegram/bind, which wants this session's state.
            "telegram_state": oauth.new_state(request.session, "")
            if options.get_bool("TelegramOAuthEnabled")
            else "",
        },
    )
