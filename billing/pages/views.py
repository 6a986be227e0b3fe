"""/detail (dashboard with charts), /log (own usage logs), /topup (redeem, EPay)."""

from __future__ import annotations

import datetime
import time
from collections import defaultdict
from typing import Any

from django.contrib import messages
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from accounts.pages.common import PAGE_SIZES, fail, page_of, query_without, show, signed_in
from billing.models import LOG_CONSUME, Log
from billing.redemption import redeem_code
from billing.services import epay
from billing.services.logs import LogFilter, logs_of, stat_logs, token_name_suggestions
from billing.services.usage import usage_for_user
from newapi_site.api.base import ApiError
from newapi_site.charts import bar_chart

DAY = 24 * 3600
LOG_KINDS = (
    (0, gettext_lazy("All")),
    (1, gettext_lazy("Top-up")),
    (2, gettext_lazy("Consume")),
    (3, gettext_lazy("Manage")),
    (4, gettext_lazy("System")),
)


def _day(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, tz=datetime.UTC).strftime("%m-%d")


@signed_in
def detail(request: HttpRequest, user: User) -> HttpResponse:
    """Balance, use and requests; quota by model and by day over the last 7 days (≤ 30)."""
    try:
        days = min(30, max(1, int(request.GET.get("days") or 7)))
    except ValueError:
        days = 7
    end = int(time.time())
    start = end - days * DAY
    rows = usage_for_user(user.pk, start, end)
    by_model: dict[str, int] = defaultdict(int)
    by_day: dict[str, int] = {_day(start + i * DAY): 0 for i in range(1, days + 1)}
    requests_by_day: dict[str, int] = dict.fromkeys(by_day, 0)
    for row in rows:
        by_model[row["model_name"]] += row["quota"]
        day = _day(row["created_at"])
        by_day[day] = by_day.get(day, 0) + row["quota"]
        requests_by_day[day] = requests_by_day.get(day, 0) + row["count"]
    models = sorted(by_model.items(), key=lambda kv: -kv[1])[:20]
    return show(
        request,
        "console/detail.html",
        {
            "u": user,
            "days": days,
            "period_quota": sum(by_model.values()),
            "period_requests": sum(requests_by_day.values()),
            "chart_models": bar_chart(models, _("Quota by model"), empty=_("No usage yet")),
            "chart_days": bar_chart(list(by_day.items()), _("Quota by day"), empty=_("No usage yet")),
            "chart_requests": bar_chart(
                list(requests_by_day.items()), _("Requests by day"), empty=_("No usage yet")
            ),
        },
    )


def _ts(raw: str) -> int:
    """A datetime-local value (UTC) to a Unix time; 0 when empty or wrong."""
    try:
        moment = datetime.datetime.fromisoformat(raw)
    except ValueError:
        return 0
    return int(moment.replace(tzinfo=moment.tzinfo or datetime.UTC).timestamp())


@signed_in
def log_page(request: HttpRequest, user: User) -> HttpResponse:
    params: dict[str, Any] = {
        k: request.GET.get(k, "") for k in ("type", "token_name", "model_name", "group")
    }
    params["start_timestamp"] = _ts(request.GET.get("start", ""))
    params["end_timestamp"] = _ts(request.GET.get("end", ""))
    flt = LogFilter.from_query(params)
    qs = logs_of(user.pk, flt)
    page, size = page_of(request, qs)
    totals = stat_logs(Log.objects.filter(user_id=user.pk), flt)
    if flt.log_type in (0, LOG_CONSUME):
        agg = flt.apply(Log.objects.filter(user_id=user.pk, type=LOG_CONSUME), with_type=False).aggregate(
            p=Sum("prompt_tokens"), c=Sum("completion_tokens")
        )
        totals["tokens"] = int((agg["p"] or 0) + (agg["c"] or 0))
    return show(
        request,
        "console/log.html",
        {
            "page": page,
            "page_size": size,
            "page_sizes": PAGE_SIZES,
            "keep": query_without(request, "p"),
            "f": request.GET,
            "log_type": flt.log_type,
            "log_types": LOG_KINDS,
            "totals": totals,
            "token_names": token_name_suggestions(user.pk),
        },
    )


def _whole_number(raw: str) -> int:
    try:
        return int(raw or 0)
    except ValueError:
        raise ApiError(_("Enter the amount as a whole number")) from None


@signed_in
def topup(request: HttpRequest, user: User) -> HttpResponse:
    price = ""
    amount = request.POST.get("amount", "")
    if request.method == "POST":
        action = request.POST.get("action", "redeem")
        try:
            if action == "redeem":
                quota = redeem_code(user, request.POST.get("key", "").strip())
                messages.success(request, _("Redeemed: %(quota)s quota added") % {"quota": f"{quota:,}"})
                return HttpResponseRedirect("/topup")
            units = _whole_number(amount)
            if action == "price":
                price = f"{epay.price_of(user, units):.2f}"
            elif action == "pay":
                params, url = epay.create_order(
                    user, units, request.POST.get("payment_method", ""), request.build_absolute_uri("/")
                )
                return show(request, "console/epay_redirect.html", {"url": url, "params": params})
        except (ApiError, ValueError) as exc:
            fail(request, exc)
    user.refresh_from_db()
    return show(
        request,
        "console/topup.html",
        {
            "u": user,
            "online": epay.online_topup_enabled(),
            "amount": amount,
            "price": price,
            "methods": [("zfb", _("Alipay")), ("wx", _("WeChat Pay"))],
        },
    )
