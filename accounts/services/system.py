"""First-run setup (management.md §3.3) and the public /api/status payload."""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import Setup, User
from newapi_site.api.base import ApiError
from newapi_site.options import options, update_option
from newapi_site.roles import ROLE_ROOT

VERSION = "newapi-django-0.1.0"
START_TIME = int(time.time())
_DB_TYPES = {"postgresql": "postgres", "mysql": "mysql", "sqlite3": "sqlite"}


def is_set_up() -> bool:
    if Setup.objects.exists():
        return True
    if User.objects.filter(role__gte=ROLE_ROOT).exists():
        Setup.objects.create(version=VERSION)  # an older New API or One API database
        return True
    return False


def setup_status() -> dict[str, Any]:
    if is_set_up():
        return {"status": True}
    return {
        "status": False,
        "root_init": User.objects.filter(role__gte=ROLE_ROOT).exists(),
        "database_type": _DB_TYPES.get(settings.DATABASE_ENGINE, settings.DATABASE_ENGINE),
    }


def run_setup(data: dict[str, Any]) -> None:
    if is_set_up():
        raise ApiError("系统已经初始化完成", status=400)
    with transaction.atomic():
        if not User.objects.filter(role__gte=ROLE_ROOT).exists():
            username = str(data.get("username") or "").strip()
            password = str(data.get("password") or "")
            if not username or len(username) > 12:
                raise ApiError("用户名长度不能超过12个字符", status=400)
            if password != data.get("confirmPassword"):
                raise ApiError("两次输入的密码不一致", status=400)
            if len(password) < 8:
                raise ApiError("密码长度至少为8个字符", status=400)
            root = User(username=username, display_name="Root User", role=ROLE_ROOT, quota=100_000_000)
            root.set_password(password)
            root.save()
        for key in ("SelfUseModeEnabled", "DemoSiteEnabled"):
            update_option(key, "true" if data.get(key) is True or data.get(key) == "true" else "false")
        Setup.objects.create(version=VERSION)


def status_payload() -> dict[str, Any]:
    o = options
    try:
        chats = json.loads(o.get("Chats") or "[]")
    except ValueError:
        chats = []
    online_topup = bool(o.get("PayAddress") and o.get("EpayId") and o.get("EpayKey"))
    return {
        "version": VERSION,
        "start_time": START_TIME,
        "email_verification": o.get_bool("EmailVerificationEnabled"),
        "github_oauth": o.get_bool("GitHubOAuthEnabled"),
        "github_client_id": o.get("GitHubClientId"),
        "linuxdo_oauth": o.get_bool("LinuxDOOAuthEnabled"),
        "linuxdo_client_id": o.get("LinuxDOClientId"),
        "telegram_oauth": o.get_bool("TelegramOAuthEnabled"),
        "telegram_bot_name": o.get("TelegramBotName"),
        "system_name": o.get("SystemName"),
        "logo": o.get("Logo"),
        "footer_html": o.get("Footer"),
        "wechat_qrcode": o.get("WeChatAccountQRCodeImageURL"),
        "wechat_login": o.get_bool("WeChatAuthEnabled"),
        "server_address": o.get("ServerAddress") or "http://localhost:3000",
        "price": o.get_float("Price", 7.3),
        "min_topup": o.get_int("MinTopUp", 1),
        "turnstile_check": o.get_bool("TurnstileCheckEnabled"),
        "turnstile_site_key": o.get("TurnstileSiteKey"),
        "top_up_link": o.get("TopUpLink"),
        "docs_link": o.get("general_setting.docs_link"),
        "quota_per_unit": o.get_float("QuotaPerUnit", 500000),
        "display_in_currency": o.get_bool("DisplayInCurrencyEnabled"),
        "enable_batch_update": settings.BATCH_UPDATE_ENABLED,
        "enable_drawing": o.get_bool("DrawingEnabled"),
        "enable_task": o.get_bool("TaskEnabled"),
        "enable_data_export": o.get_bool("DataExportEnabled"),
        "data_export_default_time": o.get("DataExportDefaultTime"),
        "default_collapse_sidebar": o.get_bool("DefaultCollapseSidebar"),
        "enable_online_topup": online_topup,
        "mj_notify_enabled": o.get_bool("MjNotifyEnabled"),
        "chats": chats,
        "demo_site_enabled": o.get_bool("DemoSiteEnabled"),
        "self_use_mode_enabled": o.get_bool("SelfUseModeEnabled"),
        "oidc_enabled": o.get_bool("oidc.enabled"),
        "oidc_client_id": o.get("oidc.client_id"),
        "oidc_authorization_endpoint": o.get("oidc.authorization_endpoint"),
        "setup": is_set_up(),
    }
