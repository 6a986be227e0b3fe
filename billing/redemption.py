"""Redemption codes: admin batch creation and exactly-once redemption (management.md §3.7).

Redemption claims the code with one conditional `UPDATE … WHERE status = 1`: of any number of
concurrent requests, on any number of nodes, exactly one sees a row count of 1 and credits the quota.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.limits import check_int64
from accounts.models import User, now_ts
from billing.models import LOG_TOPUP, REDEMPTION_DISABLED, REDEMPTION_ENABLED, REDEMPTION_USED, Redemption
from billing.services.credit import credit_user
from billing.services.logs import record_log
from newapi_site.api.base import ApiError
from newapi_site.money import log_quota


def redeem_code(user: User, key: str) -> int:
    if not key:
        raise ApiError("未提供兑换码")
    with transaction.atomic():
        code = Redemption.objects.filter(key=key, deleted_at__isnull=True).first()
        if code is None:
            raise ApiError("无效的兑换码")
        claimed = Redemption.objects.filter(
            pk=code.pk, status=REDEMPTION_ENABLED, deleted_at__isnull=True
        ).update(status=REDEMPTION_USED, redeemed_time=now_ts(), used_user_id=user.pk)
        if claimed != 1:
            disabled = code.status == REDEMPTION_DISABLED
            raise ApiError("该兑换码已被禁用" if disabled else "该兑换码已被使用")
        credit_user(user.pk, code.quota)
    record_log(
        user.pk,
        LOG_TOPUP,
        f"通过兑换码充值 {log_quota(code.quota)}，兑换码ID {code.pk}",
        user.username,
    )
    return code.quota


# -- admin ------------------------------------------------------------------------------------
def live_redemptions() -> QuerySet[Redemption]:
    return Redemption.objects.filter(deleted_at__isnull=True).order_by("-id")


def search_redemptions(keyword: str) -> QuerySet[Redemption]:
    cond = Q(name__startswith=keyword)
    if keyword.isdigit():
        cond |= Q(pk=int(keyword))
    return live_redemptions().filter(cond)


def get_redemption(redemption_id: int) -> Redemption:
    code = live_redemptions().filter(pk=redemption_id).first()
    if code is None:
        raise ApiError("兑换码不存在")
    return code


def _check_name(name: Any) -> str:
    name = str(name or "").strip()
    if not 1 <= len(name) <= 20:
        raise ApiError("兑换码名称长度必须在1-20之间")
    return name


def _check_quota(quota: Any) -> int:
    if isinstance(quota, bool):
        raise ApiError("无效的参数: quota")
    try:
        value = int(quota)
    except (TypeError, ValueError):
        raise ApiError("无效的参数: quota") from None
    if value <= 0:
        raise ApiError("额度必须大于0")
    return check_int64(value, "quota")


def create_redemptions(creator: User, data: dict[str, Any]) -> list[str]:
    name = _check_name(data.get("name"))
    quota = _check_quota(data.get("quota"))
    try:
        count = int(data.get("count") or 0)
    except (TypeError, ValueError):
        count = 0
    if not 1 <= count <= 100:
        raise ApiError("兑换码个数必须在1-100之间")
    codes = [
        Redemption(user_id=creator.pk, key=uuid.uuid4().hex, name=name, quota=quota) for _ in range(count)
    ]
    try:
        with transaction.atomic():
            Redemption.objects.bulk_create(codes)
    except IntegrityError:
        raise ApiError("创建兑换码失败，请重试") from None
    return [c.key for c in codes]


def update_redemption(data: dict[str, Any], *, status_only: bool) -> Redemption:
    try:
        raw_id: Any = data.get("id")  # None: TypeError below
        code = get_redemption(int(raw_id))
    except (TypeError, ValueError):
        raise ApiError("无效的参数: id") from None
    if status_only:
        status = data.get("status")
        if status not in (REDEMPTION_ENABLED, REDEMPTION_DISABLED):
            raise ApiError("无效的参数: status")
        # A used code stays used: re-enabling it would let it be redeemed twice.
        updated = Redemption.objects.filter(pk=code.pk).exclude(status=REDEMPTION_USED).update(status=status)
        if not updated:
            raise ApiError("该兑换码已被使用")
    else:
        Redemption.objects.filter(pk=code.pk).update(
            name=_check_name(data.get("name")), quota=_check_quota(data.get("quota"))
        )
    code.refresh_from_db()
    return code


def delete_redemption(redemption_id: int) -> None:
    code = get_redemption(redemption_id)
    Redemption.objects.filter(pk=code.pk).update(deleted_at=timezone.now())


def render_redemption(code: Redemption) -> dict[str, Any]:
    return {
        "id": code.pk,
        "user_id": code.user_id,
        "key": code.key,
        "status": code.status,
        "name": code.name or "",
        "quota": code.quota,
        "created_time": code.created_time,
        "redeemed_time": code.redeemed_time,
        "used_user_id": code.used_user_id,
        "count": 0,
        "DeletedAt": code.deleted_at.isoformat() if code.deleted_at else None,
    }
