"""What New API's own console needs from this backend: tag-mode paging, log texts in money amounts,
a failed channel test that names the URL and the reason, and root told when a test re-enables a
channel and when a full test run ends."""

from __future__ import annotations

import json

import httpx
import pytest

from accounts.models import User
from billing.models import LOG_MANAGE, LOG_TOPUP, Log
from newapi_site.options import update_option
from newapi_site.roles import ROLE_ROOT
from relay.channels import tester as channel_test
from relay.models import Channel
from tests.api_client import Api
from tests.conftest import free_port, live, make_channel, make_user, propagated
from tests.notify.conftest import parse, wait_for


@pytest.mark.django_db
def test_tag_mode_pages_tagged_channels_only(as_admin, fake_upstream):
    untagged = make_channel(fake_upstream.base_url, key="plain")
    by_tag = {}
    for tag in ("alpha", "beta", "gamma"):
        by_tag[tag] = {make_channel(fake_upstream.base_url, key=f"{tag}-{i}", tag=tag).pk for i in range(2)}
    page0 = as_admin.get("/api/channel/", {"tag_mode": "true", "p": 0, "page_size": 2})["data"]
    assert {c["id"] for c in page0} == by_tag["alpha"] | by_tag["beta"]
    assert all(c["tag"] for c in page0) and untagged.pk not in {c["id"] for c in page0}
    page1 = as_admin.get("/api/channel/", {"tag_mode": "true", "p": 1, "page_size": 2})["data"]
    assert {c["id"] for c in page1} == by_tag["gamma"]
    assert as_admin.get("/api/channel/", {"tag_mode": "true", "p": 2, "page_size": 2})["data"] == []
    plain = as_admin.get("/api/channel/", {"p": 0, "page_size": 10})["data"]
    assert untagged.pk in {c["id"] for c in plain}  # without tag mode every channel is listed


@pytest.mark.django_db
def test_quota_edit_and_redemption_logs_in_money(as_admin, alice):
    update_option("DisplayInCurrencyEnabled", "true")
    assert as_admin.put("/api/user/", {"id": alice.pk, "quota": 5_250_000})["success"]
    assert (
        Log.objects.get(user_id=alice.pk, type=LOG_MANAGE).content
        == "管理员将用户额度从 ＄20.000000 额度修改为 ＄10.500000 额度"
    )
    key = as_admin.post("/api/redemption/", {"name": "gift", "count": 1, "quota": 1234})["data"][0]
    assert Api(alice).post("/api/user/topup", {"key": key})["data"] == 1234
    topup = Log.objects.get(user_id=alice.pk, type=LOG_TOPUP).content
    assert topup.startswith("通过兑换码充值 ＄0.002468 额度，兑换码ID ")

    update_option("DisplayInCurrencyEnabled", "false")
    Log.objects.all().delete()
    assert as_admin.put("/api/user/", {"id": alice.pk, "quota": 1000})["success"]
    assert (
        Log.objects.get(user_id=alice.pk, type=LOG_MANAGE).content
        == "管理员将用户额度从 5251234 点额度修改为 1000 点额度"
    )


@pytest.mark.django_db
def test_failed_channel_test_names_the_url_and_the_reason():
    port = free_port()  # nothing listens there
    channel = make_channel(f"http://127.0.0.1:{port}", key="nobody-home")
    result = channel_test.test_channel_sync(channel.pk)
    assert not result.success
    prefix = f'Post "http://127.0.0.1:{port}/v1/chat/completions": '
    assert result.message.startswith(prefix) and len(result.message) > len(prefix), result.message
    assert "status code" not in result.message


@live
def test_root_hears_of_a_reenabled_channel_and_the_finished_run(
    notify_gateway, fake_upstream, webhook, mail_options
):
    webhook.received.clear()
    root = make_user("rootc", role=ROLE_ROOT)
    root.setting = json.dumps(
        {"notify_type": "webhook", "quota_warning_threshold": 1, "webhook_url": webhook.url}
    )
    root.save(update_fields=["setting"])
    update_option("AutomaticEnableChannelEnabled", "true")
    propagated()
    channel = make_channel(fake_upstream.base_url, key="comes-back", name="back")
    Channel.objects.filter(pk=channel.pk).update(status=3)
    propagated()
    api = Api(User.objects.get(pk=root.pk))
    r = httpx.get(
        f"{notify_gateway.url}/api/channel/test",
        headers={"Authorization": api.user.access_token, "New-Api-User": str(root.pk)},
        timeout=30,
    )
    assert r.json()["success"] is True, r.text
    wait_for(lambda: len(webhook.received) >= 2)
    kinds = {parse(body)["type"]: parse(body) for _h, body in webhook.received}
    assert set(kinds) == {f"channel_update_{channel.pk}_1", "channel_test"}
    assert kinds[f"channel_update_{channel.pk}_1"]["title"] == f"通道「back」（#{channel.pk}）已被启用"
    assert (
        kinds["channel_test"]["title"] == "通道测试完成"
        and kinds["channel_test"]["content"] == "所有通道测试已完成"
    )
