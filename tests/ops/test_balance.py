"""Channel balances: per-provider queries against a real fake server, the routes, bulk disable."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs

import pytest

from relay.models import Channel
from tests.conftest import make_channel

pytestmark = pytest.mark.django_db


def test_openai_style_balance_route(as_admin, as_alice, fake_ops):
    channel = make_channel(fake_ops.base_url, key="bal-key")
    body = as_admin.get(f"/api/channel/update_balance/{channel.pk}")
    assert body == {"success": True, "message": "", "balance": 75.0}
    channel.refresh_from_db()
    assert channel.balance == 75.0 and channel.balance_updated_time > 0
    (_, sub_path, _, headers, _), (_, usage_path, query, _, _) = fake_ops.requests
    assert sub_path == "/v1/dashboard/billing/subscription" and headers["Authorization"] == "Bearer bal-key"
    assert usage_path == "/v1/dashboard/billing/usage"
    today = dt.date.today()
    assert parse_qs(query) == {"start_date": [f"{today:%Y-%m}-01"], "end_date": [f"{today:%Y-%m-%d}"]}
    assert as_alice.get(f"/api/channel/update_balance/{channel.pk}")["message"] == "权限不足"


def test_no_payment_method_looks_back_100_days(as_admin, fake_ops):
    fake_ops.subscription = {"hard_limit_usd": 5, "has_payment_method": False}
    try:
        channel = make_channel(fake_ops.base_url)
        assert as_admin.get(f"/api/channel/update_balance/{channel.pk}")["balance"] == -20.0
        start = dt.date.today() - dt.timedelta(days=100)
        assert parse_qs(fake_ops.requests[-1][2])["start_date"] == [f"{start:%Y-%m-%d}"]
    finally:
        fake_ops.subscription = {"hard_limit_usd": 100.0, "has_payment_method": True}


@pytest.mark.parametrize(("channel_type", "expected"), [(43, 42.5), (40, 7.25), (20, -2.5)])
def test_other_providers(as_admin, fake_ops, channel_type, expected):
    channel = make_channel(fake_ops.base_url, type=channel_type)
    assert as_admin.get(f"/api/channel/update_balance/{channel.pk}") == {"success": True, "message": "", "balance": expected}


def test_unsupported_type_and_upstream_error(as_admin, fake_ops):
    azure = make_channel(fake_ops.base_url, type=3)
    body = as_admin.get(f"/api/channel/update_balance/{azure.pk}")
    assert body["success"] is False and "尚未实现" in body["message"] and body["balance"] == 0
    missing = make_channel(fake_ops.base_url + "/nowhere", type=12)
    assert as_admin.get(f"/api/channel/update_balance/{missing.pk}")["message"] == "status code: 404"


def test_bulk_update_disables_exhausted_enabled_channels(as_admin, fake_ops):
    rich = make_channel(fake_ops.base_url, key="rich")
    broke = make_channel(fake_ops.base_url, key="broke", type=20)  # OpenRouter fake: 10 - 12.5
    spared = make_channel(fake_ops.base_url, key="spared", type=20, auto_ban=0)
    off = make_channel(fake_ops.base_url, key="off", type=20, status=2)
    assert as_admin.get("/api/channel/update_balance") == {"success": True, "message": ""}
    for c in (rich, broke, spared, off):
        c.refresh_from_db()
    assert rich.status == 1 and rich.balance == 75.0
    assert broke.status == 3 and broke.balance == -2.5 and "余额不足" in json.loads(broke.other_info)["status_reason"]
    assert spared.status == 1 and spared.balance == -2.5
    assert off.status == 2 and off.balance_updated_time == 0  # only enabled channels are queried
    assert not Channel.objects.get(pk=broke.pk).status == 1
