"""billing's `/api` routes: redemption and top-up, redemption codes, logs and usage data."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, re_path

from newapi_site.api.base import route

from . import topup, views

urlpatterns: list[URLPattern | URLResolver] = [
    # balance
    route("user/topup", views.RedeemView),
    route("user/amount", topup.AmountView),
    route("user/pay", topup.PayView),
    re_path(r"^user/epay/notify/?$", topup.epay_notify),
    # redemption codes
    route("redemption", views.RedemptionListView),
    route("redemption/search", views.RedemptionSearchView),
    route(r"redemption/(?P<redemption_id>-?\d+)", views.RedemptionDetailView),
    # logs and usage data
    route("log", views.LogListView),
    route("log/stat", views.LogStatView),
    route("log/search", views.LogSearchView),
    route("log/self", views.SelfLogListView),
    route("log/self/stat", views.SelfLogStatView),
    route("log/self/search", views.SelfLogSearchView),
    route("log/token", views.TokenLogView),
    route("data", views.DataView),
    route("data/self", views.SelfDataView),
]
