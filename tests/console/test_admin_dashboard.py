"""The admin index draws its dashboard: per day and per model, top users and channels, channel health."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client

from billing.models import LOG_CONSUME, Log, QuotaData
from newapi_site.roles import ROLE_ROOT
from relay.channels.types import ChannelStatus
from relay.models import Channel
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_dashboard_charts_the_chosen_period() -> None:
    root = make_user("boss", role=ROLE_ROOT)
    now = int(time.time())
    hour = now - now % 3600
    QuotaData.objects.create(
        user_id=root.pk,
        username="heavy",
        model_name="gpt-4o-mini",
        created_at=hour,
        count=3,
        quota=900,
        token_used=60,
    )
    QuotaData.objects.create(
        user_id=root.pk,
        username="light",
        model_name="claude-x",
        created_at=hour - 3 * 86400,
        count=1,
        quota=100,
        token_used=10,
    )
    QuotaData.objects.create(
        user_id=root.pk,
        username="old",
        model_name="ancient",
        created_at=hour - 20 * 86400,
        count=5,
        quota=5000,
        token_used=1,
    )
    channel = Channel.objects.create(
        name="fast-one", type=1, key="k", models="gpt-4o-mini", response_time=420
    )
    Channel.objects.create(name="auto-off", type=1, key="k2", models="m", status=ChannelStatus.AUTO_DISABLED)
    Log.objects.create(
        user_id=root.pk, type=LOG_CONSUME, channel_id=channel.pk, quota=900, use_time=2, created_at=now
    )
    client = Client()
    client.force_login(root)
    html = client.get("/admin/?days=7").content.decode()
    assert html.count('class="bar-chart"') == 7
    assert "gpt-4o-mini" in html and "claude-x" in html and "ancient" not in html  # 20 days ago: outside
    totals = dict(re.findall(r"<span>([^<]+)</span><strong>(\d+)</strong>", html))
    assert (totals["Requests"], totals["Quota"], totals["Tokens"]) == ("4", "1000", "70")
    assert (totals["Channels enabled"], totals["Disabled automatically"]) == ("1", "1")
    assert "fast-one" in html
    wide = client.get("/admin/?days=30").content.decode()
    assert "ancient" in wide


def test_common_users_get_no_dashboard() -> None:
    client = Client()
    assert "bar-chart" not in client.get("/admin/", follow=True).content.decode()


def test_list_page_size_is_chosen_and_remembered() -> None:
    root = make_user("sizer", role=ROLE_ROOT)
    for n in range(25):
        Log.objects.create(user_id=root.pk, type=LOG_CONSUME, quota=n, created_at=int(time.time()))
    client = Client()
    client.force_login(root)
    listing = client.get("/admin/billing/log/").content.decode()
    assert 'name="page_size"' in listing
    assert listing.count('class="action-checkbox"') == 25
    answer = client.post(
        "/admin-page-size", {"model": "billing.log", "page_size": "20", "next": "/admin/billing/log/"}
    )
    assert answer.status_code == 302 and answer["Location"] == "/admin/billing/log/"
    smaller = client.get("/admin/billing/log/").content.decode()
    assert '<option value="20" selected>' in smaller
    assert smaller.count('class="action-checkbox"') == 20
    assert client.post("/admin-page-size", {"model": "billing.log", "page_size": "7"}).status_code == 400
    assert Client().post("/admin-page-size", {"model": "billing.log", "page_size": "50"}).status_code == 302


def test_admin_speaks_chinese_with_the_apps_own_names() -> None:
    root = make_user("zhroot", role=ROLE_ROOT)
    client = Client()
    client.force_login(root)
    html = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert '<html lang="zh-hans"' in html
    for name in ("渠道", "令牌", "兑换码", "审计日志", "请求数"):
        assert name in html, name
    english = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Channels" in english and "Tokens" in english and "渠道" not in english


def test_list_titles_in_the_readers_language() -> None:
    client = Client()
    client.force_login(make_user("titler", role=ROLE_ROOT))
    assert (
        "<h1>渠道</h1>" in client.get("/admin/relay/channel/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    )
    assert "<h1>Tokens</h1>" in client.get("/admin/accounts/token/").content.decode()
