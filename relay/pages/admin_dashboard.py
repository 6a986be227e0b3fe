"""The admin index as a dashboard: use per day and per model, top users and channels, channel health.

Charts are SVG drawn on the server (newapi_site.charts), for a period chosen on the page.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from django.contrib.admin import AdminSite
from django.db.models import Avg, Count, Sum
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from billing.models import LOG_CONSUME, Log, QuotaData
from newapi_site.charts import bar_chart
from relay.channels.types import ChannelStatus
from relay.models import Channel

DAY = 24 * 3600
PERIODS = (1, 7, 14, 30, 90)


def _period(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days") or 7)
    except ValueError:
        return 7
    return days if days in PERIODS else 7


def _day(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, tz=datetime.UTC).strftime("%m-%d")


def dashboard(days: int, now: int | None = None) -> dict[str, Any]:
    end = int(now if now is not None else time.time())
    start = end - days * DAY
    per_day: dict[str, dict[str, int]] = {
        _day(start + i * DAY): {"count": 0, "quota": 0, "tokens": 0} for i in range(1, days + 1)
    }
    buckets = (
        QuotaData.objects.filter(created_at__gte=start, created_at__lte=end)
        .values("created_at")
        .annotate(count=Sum("count"), quota=Sum("quota"), tokens=Sum("token_used"))
    )
    for bucket in buckets:
        day = per_day.setdefault(_day(bucket["created_at"]), {"count": 0, "quota": 0, "tokens": 0})
        day["count"] += bucket["count"] or 0
        day["quota"] += bucket["quota"] or 0
        day["tokens"] += bucket["tokens"] or 0
    in_range = QuotaData.objects.filter(created_at__gte=start, created_at__lte=end)
    by_model = list(
        in_range.values("model_name")
        .annotate(q=Sum("quota"))
        .order_by("-q")
        .values_list("model_name", "q")[:15]
    )
    top_users = list(
        in_range.values("username").annotate(q=Sum("quota")).order_by("-q").values_list("username", "q")[:10]
    )
    names = dict(Channel.objects.values_list("id", "name"))
    top_channels = [
        {
            "id": row["channel_id"],
            "name": names.get(row["channel_id"] or 0) or f"#{row['channel_id']}",
            "requests": row["n"],
            "quota": row["q"] or 0,
            "seconds": round(float(row["t"] or 0), 2),
        }
        for row in Log.objects.filter(type=LOG_CONSUME, created_at__gte=start, created_at__lte=end)
        .exclude(channel_id__isnull=True)
        .values("channel_id")
        .annotate(n=Count("id"), q=Sum("quota"), t=Avg("use_time"))
        .order_by("-q")[:10]
    ]
    health = dict(Channel.objects.values("status").annotate(n=Count("id")).values_list("status", "n"))
    slowest = list(
        Channel.objects.filter(status=ChannelStatus.ENABLED, response_time__gt=0)
        .order_by("-response_time")
        .values_list("name", "response_time")[:10]
    )
    totals = {k: sum(d[k] for d in per_day.values()) for k in ("count", "quota", "tokens")}
    no_data = _("No data in this period")
    return {
        "days": days,
        "periods": PERIODS,
        "totals": totals,
        "health": {
            "enabled": health.get(ChannelStatus.ENABLED, 0),
            "manual": health.get(ChannelStatus.MANUALLY_DISABLED, 0),
            "auto": health.get(ChannelStatus.AUTO_DISABLED, 0),
        },
        "top_channels": top_channels,
        "charts": [
            (
                _("Requests per day"),
                bar_chart(
                    [(d, v["count"]) for d, v in per_day.items()], _("Requests per day"), empty=no_data
                ),
            ),
            (
                _("Quota per day"),
                bar_chart([(d, v["quota"]) for d, v in per_day.items()], _("Quota per day"), empty=no_data),
            ),
            (
                _("Tokens per day"),
                bar_chart([(d, v["tokens"]) for d, v in per_day.items()], _("Tokens per day"), empty=no_data),
            ),
            (
                _("Quota per model"),
                bar_chart([(m or "-", q or 0) for m, q in by_model], _("Quota per model"), empty=no_data),
            ),
            (
                _("Top users by quota"),
                bar_chart([(u or "-", q or 0) for u, q in top_users], _("Top users by quota"), empty=no_data),
            ),
            (
                _("Top channels by quota"),
                bar_chart(
                    [(c["name"], c["quota"]) for c in top_channels], _("Top channels by quota"), empty=no_data
                ),
            ),
            (
                _("Slowest enabled channels (ms, last test)"),
                bar_chart(
                    [(n or "-", ms or 0) for n, ms in slowest],
                    _("Slowest enabled channels (ms, last test)"),
                    empty=no_data,
                ),
            ),
        ],
    }


def install(site: AdminSite) -> None:
    """Give the admin index its dashboard; call before the site's URLs are built."""
    index_view = site.index

    def index(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = dict(extra_context or {})
        if request.user.is_active and request.user.is_staff:
            context["dashboard"] = dashboard(_period(request))
        return index_view(request, context)

    site.index = index  # type: ignore[method-assign,assignment]
