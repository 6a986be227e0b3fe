"""Notifying users: quota running low after a charge, and root on channel status changes.

Each notification is counted first (at most NOTIFY_LIMIT_COUNT per user and type per
NOTIFICATION_LIMIT_DURATION_MINUTE window, exact across processes: billing/counters.py), then
handed to a Celery task (billing/tasks.py) that delivers it; nothing is sent on the request's path
and a failure never reaches the API client. A process that saw the cap reached stops asking the
counter until the window ends, so a user below the threshold costs one dictionary lookup per request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from accounts.models import User
from billing import counters
from billing.tasks import send_notification
from newapi_site.money import format_quota
from newapi_site.options import options
from newapi_site.roles import ROLE_ROOT

log = logging.getLogger("newapi.notify")

QUOTA_EXCEED = "quota_exceed"
CHANNEL_TEST = "channel_test"
QUOTA_TITLE = "您的额度即将用尽"
QUOTA_CONTENT = "{{value}}，当前剩余额度为 {{value}}，为了不影响您的使用，请及时充值。<br/>充值链接：<a href='{{value}}'>{{value}}</a>"
_full: dict[str, float] = {}  # window key -> window end, for windows this process saw at the cap


def channel_update_type(channel_id: int, status: int) -> str:
    return f"channel_update_{channel_id}_{status}"


def threshold(setting: dict[str, Any]) -> float:
    value = setting.get("quota_warning_threshold")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return options.get_float("QuotaRemindThreshold", 1000)


def _window() -> int:
    return max(int(settings.NOTIFICATION_LIMIT_DURATION_MINUTE), 1) * 60


def notify(user_id: int, kind: str, title: str, content: str, values: list[Any] | None = None) -> bool:
    """Count and queue one notification; False when over the limit (or the queue is down)."""
    name = f"notify_limit:{user_id}:{kind}"
    key, ends = counters.window_key(name, _window())
    now = time.time()
    if _full.get(key, 0) > now:
        return False
    if not counters.claim(name, int(settings.NOTIFY_LIMIT_COUNT), _window()):
        if len(_full) > 10_000:
            for k in [k for k, end in _full.items() if end <= now]:
                del _full[k]
        _full[key] = ends
        return False
    notice = {"type": kind, "title": title, "content": content, "values": values or [], "timestamp": int(now)}
    try:
        send_notification.delay(user_id, notice)
    except Exception:
        log.exception("notification %s for user %s could not be queued", kind, user_id)
        return False
    return True


def notify_root(kind: str, title: str, content: str) -> bool:
    root_id = User.objects.filter(role=ROLE_ROOT).order_by("id").values_list("id", flat=True).first()
    if root_id is None:
        return False
    return notify(root_id, kind, title, content)


def notify_quota(user_id: int, balance: int) -> bool:
    link = f"{(options.get('ServerAddress') or '').rstrip('/')}/topup"
    return notify(
        user_id, QUOTA_EXCEED, QUOTA_TITLE, QUOTA_CONTENT, [QUOTA_TITLE, format_quota(balance), link, link]
    )


async def after_charge(user_id: int, setting: dict[str, Any], charged: int, balance: int | None) -> None:
    """After a billed request: notify when the balance it left is under the user's threshold.
    `balance` None means the ledger did not know it (nothing is sent)."""
    if not charged or balance is None or balance >= threshold(setting):
        return
    try:
        await sync_to_async(notify_quota, thread_sensitive=False)(user_id, balance)
    except Exception:
        log.exception("quota notification for user %s failed", user_id)


def notify_channel_disabled(channel_id: int, name: str, status: int, reason: str) -> None:
    title = f"通道「{name}」（#{channel_id}）已被禁用"
    _safe_root(
        channel_update_type(channel_id, status), title, f"{title}，原因：{reason}" if reason else title
    )


def notify_channel_enabled(channel_id: int, name: str, status: int) -> None:
    title = f"通道「{name}」（#{channel_id}）已被启用"
    _safe_root(channel_update_type(channel_id, status), title, title)


def notify_channel_test_done() -> None:
    _safe_root(CHANNEL_TEST, "通道测试完成", "所有通道测试已完成")


def _safe_root(kind: str, title: str, content: str) -> None:
    try:
        notify_root(kind, title, content)
    except Exception:
        log.exception("root notification %s failed", kind)
