"""Channel test: response time, automatic disable/enable, the admin routes and the periodic task."""

from __future__ import annotations

import json

import pytest

from newapi_site.options import update_option
from relay import tasks
from relay.channels import tester as channel_test
from relay.models import Ability, Channel
from tests.conftest import make_channel

pytestmark = pytest.mark.django_db


def options_on(*names: str, **values: str) -> None:
    for name in names:
        update_option(name, "true")
    for name, value in values.items():
        update_option(name, value)


def test_success_records_response_time_and_sends_a_tiny_request(fake_ops):
    fake_ops.delay = 0.02
    channel = make_channel(fake_ops.base_url, key="ok-key", models="gpt-4o-mini,gpt-4o", model_mapping='{"gpt-4o": "gpt-4o-2024"}')
    result = channel_test.test_channel_sync(channel.pk, "gpt-4o")
    assert result.success and result.message == "" and result.model == "gpt-4o"
    channel.refresh_from_db()
    assert channel.response_time >= 20 and channel.test_time > 0
    assert result.time_ms == channel.response_time
    _method, path, _q, headers, body = fake_ops.requests[-1]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer ok-key"
    assert body["model"] == "gpt-4o-2024" and body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["max_tokens"] == 10


def test_model_choice_and_embedding_path(fake_ops):
    channel = make_channel(fake_ops.base_url, models="text-embedding-3-small,gpt-4o", test_model="")
    assert channel_test.test_channel_sync(channel).success
    assert fake_ops.requests[-1][1] == "/v1/embeddings" and fake_ops.requests[-1][4]["input"] == ["hello world"]
    Channel.objects.filter(pk=channel.pk).update(test_model="o3-mini")
    assert channel_test.test_channel_sync(channel.pk).model == "o3-mini"
    assert fake_ops.requests[-1][4]["max_completion_tokens"] == 10
    Channel.objects.filter(pk=channel.pk).update(test_model="", models="")
    assert channel_test.test_channel_sync(channel.pk).model == "gpt-4o-mini"


def test_fatal_failure_disables_when_allowed(fake_ops):
    options_on("AutomaticDisableChannelEnabled")
    fake_ops.broken = True
    channel = make_channel(fake_ops.base_url, key="dead")
    result = channel_test.test_channel_sync(channel.pk)
    assert not result.success and result.status_change == "disabled"
    assert "401" in result.message and "Incorrect API key" in result.message
    channel.refresh_from_db()
    assert channel.status == 3 and channel.test_time > 0
    assert json.loads(channel.other_info)["status_reason"] == "Incorrect API key provided"
    assert Ability.objects.filter(channel_id=channel.pk).exists()
    assert not Ability.objects.filter(channel_id=channel.pk, enabled=True).exists()


def test_failure_keeps_channel_when_option_off_or_auto_ban_off(fake_ops):
    fake_ops.broken = True
    channel = make_channel(fake_ops.base_url, key="dead")
    assert channel_test.test_channel_sync(channel.pk).status_change == ""
    channel.refresh_from_db()
    assert channel.status == 1
    options_on("AutomaticDisableChannelEnabled")
    Channel.objects.filter(pk=channel.pk).update(auto_ban=0)
    assert not channel_test.test_channel_sync(channel.pk).success
    channel.refresh_from_db()
    assert channel.status == 1


def test_non_fatal_failure_does_not_disable(fake_ops):
    options_on("AutomaticDisableChannelEnabled")
    channel = make_channel("http://127.0.0.1:9", key="unreachable")  # nothing listens on port 9
    result = channel_test.test_channel_sync(channel.pk)
    assert not result.success and result.status_change == ""
    channel.refresh_from_db()
    assert channel.status == 1 and channel.test_time > 0


def test_slow_answer_over_threshold_disables(fake_ops):
    options_on("AutomaticDisableChannelEnabled", ChannelDisableThreshold="0.05")
    fake_ops.delay = 0.1
    channel = make_channel(fake_ops.base_url, key="slow")
    result = channel_test.test_channel_sync(channel.pk)
    assert result.success and result.status_change == "disabled"
    channel.refresh_from_db()
    assert channel.status == 3 and "threshold" in json.loads(channel.other_info)["status_reason"]
    update_option("ChannelDisableThreshold", "0")  # 0 = never
    fast = make_channel(fake_ops.base_url, key="slow2")
    assert channel_test.test_channel_sync(fast.pk).status_change == ""


def test_success_re_enables_auto_disabled_channel(fake_ops):
    channel = make_channel(fake_ops.base_url, key="back")
    Channel.objects.filter(pk=channel.pk).update(status=3, other_info='{"status_reason": "x", "status_time": 1}')
    Ability.objects.filter(channel_id=channel.pk).update(enabled=False)
    assert channel_test.test_channel_sync(channel.pk).status_change == ""  # option off
    channel.refresh_from_db()
    assert channel.status == 3
    options_on("AutomaticEnableChannelEnabled")
    assert channel_test.test_channel_sync(channel.pk).status_change == "enabled"
    channel.refresh_from_db()
    assert channel.status == 1 and "status_reason" not in json.loads(channel.other_info)
    assert Ability.objects.filter(channel_id=channel.pk, enabled=True).count() == 3
    manual = make_channel(fake_ops.base_url, key="manual", status=2)
    assert channel_test.test_channel_sync(manual.pk).status_change == ""
    manual.refresh_from_db()
    assert manual.status == 2


def test_task_channel_types_are_refused(fake_ops):
    channel = make_channel(fake_ops.base_url, type=2)
    result = channel_test.test_channel_sync(channel.pk)
    assert not result.success and fake_ops.requests == []


# -- routes ------------------------------------------------------------------------------------
def test_single_test_route_shape_and_auth(as_admin, as_alice, fake_ops):
    fake_ops.delay = 0.01
    channel = make_channel(fake_ops.base_url)
    body = as_admin.get(f"/api/channel/test/{channel.pk}", {"model": "gpt-4o-mini"})
    assert body["success"] is True and body["message"] == "" and isinstance(body["time"], float) and body["time"] > 0
    fake_ops.broken = True
    body = as_admin.get(f"/api/channel/test/{channel.pk}")
    assert body["success"] is False and "401" in body["message"] and "time" in body
    assert as_admin.get("/api/channel/test/999999")["success"] is False
    denied = as_alice.get(f"/api/channel/test/{channel.pk}")
    assert denied["success"] is False and denied["message"] == "权限不足"


def test_test_all_route_runs_every_channel_once(as_admin, as_alice, fake_ops, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from newapi_site.celery import app

    app.conf.task_always_eager = True
    try:
        channels = [make_channel(fake_ops.base_url, key=f"k{i}", status=s) for i, s in enumerate((1, 2, 3))]
        assert as_alice.get("/api/channel/test")["message"] == "权限不足"
        assert as_admin.get("/api/channel/test") == {"success": True, "message": ""}
        for c in channels:
            c.refresh_from_db()
            assert c.test_time > 0  # all statuses are tested
        assert tasks.try_lock(tasks.TEST_ALL_LOCK)
        try:
            busy = as_admin.get("/api/channel/test")
            assert busy["success"] is False and "测试已在运行中" in busy["message"]
        finally:
            tasks.release(tasks.TEST_ALL_LOCK)
    finally:
        app.conf.task_always_eager = False


def test_periodic_schedule_follows_settings(settings):
    from newapi_site.celery import _channel_upkeep_schedule

    settings.CHANNEL_TEST_FREQUENCY = None
    settings.CHANNEL_UPDATE_FREQUENCY = None
    assert _channel_upkeep_schedule() == {}
    settings.CHANNEL_TEST_FREQUENCY = 10
    settings.CHANNEL_UPDATE_FREQUENCY = 60
    schedule = _channel_upkeep_schedule()
    assert schedule["test-all-channels"] == {"task": "relay.test_all_channels", "schedule": 600.0}
    assert schedule["update-all-balances"]["schedule"] == 3600.0
    from newapi_site.celery import app

    app.loader.import_default_modules()
    assert {"relay.test_all_channels", "relay.update_all_balances"} <= set(app.tasks)


def test_periodic_task_skips_while_a_run_holds_the_lock(fake_ops):
    channel = make_channel(fake_ops.base_url)
    assert tasks.try_lock(tasks.TEST_ALL_LOCK)
    try:
        assert tasks.test_all_channels() is None
    finally:
        tasks.release(tasks.TEST_ALL_LOCK)
    assert tasks.test_all_channels() == 1
    channel.refresh_from_db()
    assert channel.test_time > 0


def test_admin_action_tests_selected_channels(root_user, fake_ops):
    from django.contrib.messages import get_messages
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(root_user)
    good = make_channel(fake_ops.base_url, key="admin-good", name="good")
    other = make_channel(fake_ops.base_url, key="admin-other", name="other")
    response = client.post(
        reverse("admin:relay_channel_changelist"), {"action": "test_channels", "_selected_action": [good.pk]}, follow=True
    )
    texts = [str(m) for m in get_messages(response.wsgi_request)] or [m.message for m in response.context["messages"]]
    assert any("good" in t and "gpt-4o-mini ok" in t for t in texts), texts
    good.refresh_from_db()
    other.refresh_from_db()
    assert good.test_time > 0 and other.test_time == 0
