"""Hourly usage rollups for the dashboard (`quota_data`, management.md §3.10)."""

from __future__ import annotations

from typing import Any

from django.db.models import Sum

from billing.models import QuotaData
from newapi_site.api.base import ApiError

MAX_SELF_SPAN = 30 * 24 * 3600


def _in_range(qs, start: int, end: int):
    if start:
        qs = qs.filter(created_at__gte=start)
    if end:
        qs = qs.filter(created_at__lte=end)
    return qs


def render_row(row: QuotaData) -> dict[str, Any]:
    return {
        "id": row.pk,
        "user_id": row.user_id,
        "username": row.username,
        "model_name": row.model_name,
        "created_at": row.created_at,
        "token_used": row.token_used,
        "count": row.count,
        "quota": row.quota,
    }


def usage_for_admin(start: int, end: int, username: str) -> list[dict[str, Any]]:
    if username:
        qs = _in_range(QuotaData.objects.filter(username=username), start, end).order_by("created_at", "id")
        return [render_row(r) for r in qs]
    # Several nodes may have written the same bucket: always sum.
    rows = (
        _in_range(QuotaData.objects.all(), start, end)
        .values("model_name", "created_at")
        .annotate(count=Sum("count"), quota=Sum("quota"), token_used=Sum("token_used"))
        .order_by("created_at", "model_name")
    )
    return [
        {
            "id": 0,
            "user_id": 0,
            "username": "",
            "model_name": r["model_name"],
            "created_at": r["created_at"],
            "token_used": r["token_used"] or 0,
            "count": r["count"] or 0,
            "quota": r["quota"] or 0,
        }
        for r in rows
    ]


def usage_for_user(user_id: int, start: int, end: int) -> list[dict[str, Any]]:
    if start and end and end - start > MAX_SELF_SPAN:
        raise ApiError("时间跨度不能超过 1 个月")
    qs = _in_range(QuotaData.objects.filter(user_id=user_id), start, end).order_by("created_at", "id")
    return [render_row(r) for r in qs]
