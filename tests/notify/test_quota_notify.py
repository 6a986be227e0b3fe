"""Quota notifications through the real gateway and a real Celery worker: mail reaches a local
SMTP server that offers no STARTTLS, a webhook reaches a local receiver signed with the user's
secret, exactly NOTIFY_LIMIT_COUNT of each per window; root hears of an auto-disabled channel."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from email import message_from_bytes
from email.header import decode_header, make_header

import httpx
import pytest

from accounts.models import User
from billing import counters, notify_send
from newapi_site.options import update_option
from newapi_site.roles import ROLE_ROOT
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle, start_gateway
from tests.notify.conftest import parse, wait_for

pytestmark = [live, pytest.mark.relay]
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
START = 1_000_000


def _setting(user: User, **setting) -> None:
    user.setting = json.dumps(setting)
    user.save(update_fields=["setting"])
    propagated()


def _chat(gateway, token, n: int) -> None:
    headers = {"Authorization": f"Bearer sk-{token.key}"}
    for _ in range(n):
        r = httpx.post(f"{gateway.v1}/chat/completions", json=BODY, headers=headers, timeout=30)
        assert r.status_code == 200, r.text


def _html(envelope) -> str:
    msg = message_from_bytes(envelope.content)
    part = next(p for p in msg.walk() if p.get_content_type() == "text/html")
    return part.get_payload(decode=True).decode()


def test_mail_below_threshold_exactly_the_limit(notify_gateway, fake_upstream, mail_options):
    make_channel(fake_upstream.base_url, key="notify-mail")
    user = make_user("mailme", quota=START)
    _setting(
        user, notify_type="email", quota_warning_threshold=10**12, notification_email="mailme@example.test"
    )
    token = make_token(user)
    _chat(notify_gateway, token, 4)
    wait_for(lambda: len(mail_options.messages) >= 2)
    time.sleep(2)  # the other two were refused by the limit, not merely late
    assert len(mail_options.messages) == 2
    settle()
    user.refresh_from_db()
    per_request = (START - user.quota) // 4
    assert per_request > 0 and START - user.quota == 4 * per_request
    first = mail_options.messages[0]
    assert first.rcpt_tos == ["mailme@example.test"]
    subject = str(make_header(decode_header(message_from_bytes(first.content)["Subject"])))
    assert subject == "您的额度即将用尽"
    html = _html(first)
    assert "{{value}}" not in html
    assert f"当前剩余额度为 ＄{(START - per_request) / 500000:.6f}" in html
    assert "<a href='https://gw.example.test/topup'>https://gw.example.test/topup</a>" in html


def test_no_mail_above_threshold(notify_gateway, fake_upstream, mail_options):
    make_channel(fake_upstream.base_url, key="notify-quiet")
    user = make_user("quiet", quota=START, email="quiet@example.test")
    _setting(user, notify_type="email", quota_warning_threshold=1)
    _chat(notify_gateway, make_token(user), 2)
    time.sleep(2)
    assert mail_options.messages == []


def test_webhook_signed_exactly_the_limit(notify_gateway, fake_upstream, webhook, mail_options):
    webhook.received.clear()
    make_channel(fake_upstream.base_url, key="notify-hook")
    user = make_user("hooked", quota=START)
    _setting(
        user,
        notify_type="webhook",
        quota_warning_threshold=10**12,
        webhook_url=webhook.url,
        webhook_secret="s3cret",
    )
    _chat(notify_gateway, make_token(user), 3)
    wait_for(lambda: len(webhook.received) >= 2)
    time.sleep(2)
    assert len(webhook.received) == 2
    headers, body = webhook.received[0]
    assert headers["x-webhook-signature"] == hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["content-type"] == "application/json"
    payload = parse(body)
    assert set(payload) == {"type", "title", "content", "values", "timestamp"}
    assert payload["type"] == "quota_exceed" and payload["title"] == "您的额度即将用尽"
    assert "{{value}}" not in payload["content"] and "https://gw.example.test/topup" in payload["content"]
    assert (
        payload["values"][0] == "您的额度即将用尽" and payload["values"][2] == "https://gw.example.test/topup"
    )
    assert abs(payload["timestamp"] - time.time()) < 60
    assert mail_options.messages == []


def test_root_hears_of_an_auto_disabled_channel(notify_gateway, fake_upstream, webhook, mail_options):
    webhook.received.clear()
    root = make_user("rootn", role=ROLE_ROOT)
    _setting(root, notify_type="webhook", quota_warning_threshold=1, webhook_url=webhook.url)
    update_option("AutomaticDisableChannelEnabled", "true")
    propagated()
    channel = make_channel(fake_upstream.base_url, key="status-401", name="dead")
    r = httpx.post(
        f"{notify_gateway.v1}/chat/completions",
        json=BODY,
        headers={"Authorization": f"Bearer sk-{make_token(make_user('victim')).key}"},
        timeout=30,
    )
    assert r.status_code == 401
    wait_for(lambda: len(webhook.received) >= 1)
    headers, body = webhook.received[0]
    assert "x-webhook-signature" not in headers  # no secret, no signature
    payload = parse(body)
    assert payload["type"] == f"channel_update_{channel.pk}_3"
    assert payload["title"] == f"通道「dead」（#{channel.pk}）已被禁用"
    assert payload["content"].startswith(payload["title"] + "，原因：") and "values" not in payload


def test_webhook_to_a_private_address_is_refused(webhook, settings):
    settings.MEDIA_FETCH_ALLOW_PRIVATE = False
    webhook.received.clear()
    notice = {"type": "quota_exceed", "title": "t", "content": "c", "values": [], "timestamp": 1}
    with pytest.raises(notify_send.Undeliverable, match="private"):
        notify_send.send_webhook(webhook.url, "", notice)
    with pytest.raises(notify_send.Undeliverable, match="private"):
        notify_send.send_webhook(f"http://[::ffff:127.0.0.1]:{webhook.port}/hook", "", notice)
    assert webhook.received == []
    settings.MEDIA_FETCH_ALLOW_PRIVATE = True
    notify_send.send_webhook(webhook.url, "", notice)
    assert len(webhook.received) == 1


def test_webhook_error_status_raises_for_retry(webhook, settings):
    settings.MEDIA_FETCH_ALLOW_PRIVATE = True
    webhook.status = 500
    try:
        with pytest.raises(RuntimeError, match="500"):
            notify_send.send_webhook(webhook.url, "", {"type": "x", "title": "t", "content": "c"})
    finally:
        webhook.status = 200


def test_counter_exact_under_concurrency():
    name = f"test-claim-{time.time_ns()}"
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        from django.db import connection

        try:
            ok = counters.claim(name, 3, 600)
            with lock:
                results.append(ok)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 12 and results.count(True) == 3
    assert counters.claim(name + "-other", 3, 600) is True  # per key


def test_webhook_through_the_worker_url(webhook, settings, db):
    """With WorkerUrl set the gateway posts New API's envelope to the worker, which calls the hook."""
    from newapi_site.options import options

    settings.MEDIA_FETCH_ALLOW_PRIVATE = True
    update_option("WorkerUrl", f"http://127.0.0.1:{webhook.port}/worker")
    update_option("WorkerValidKey", "worker-key")
    options.invalidate()
    webhook.received.clear()
    notice = {
        "type": "quota_exceed",
        "title": "t",
        "content": "left {{value}}",
        "values": ["＄1"],
        "timestamp": 7,
    }
    with pytest.raises(notify_send.Undeliverable, match="https"):
        notify_send.send_webhook("http://hooks.example.test/x", "s3cret", notice)
    notify_send.send_webhook("https://hooks.example.test/x", "s3cret", notice)
    _headers, body = webhook.received[-1]
    envelope = parse(body)
    assert envelope["url"] == "https://hooks.example.test/x" and envelope["key"] == "worker-key"
    assert envelope["method"] == "POST"
    inner = json.dumps(envelope["body"], ensure_ascii=False, separators=(",", ":")).encode()
    assert envelope["body"] == {
        "type": "quota_exceed",
        "title": "t",
        "content": "left ＄1",
        "values": ["＄1"],
        "timestamp": 7,
    }
    assert (
        envelope["headers"]["X-Webhook-Signature"] == hmac.new(b"s3cret", inner, hashlib.sha256).hexdigest()
    )
    assert envelope["headers"]["Authorization"] == "Bearer s3cret"


def test_a_task_charge_notifies_too(notify_gateway, webhook, mail_options):
    from tests.fakes.task_upstream import FakeTaskUpstream

    upstream = FakeTaskUpstream().start()
    webhook.received.clear()
    make_channel(upstream.base_url, key="mj-key", type=2, name="mj-notify", models="mj_imagine")
    user = make_user("taskhook", quota=START)
    _setting(user, notify_type="webhook", quota_warning_threshold=10**12, webhook_url=webhook.url)
    token = make_token(user)
    r = httpx.post(
        f"{notify_gateway.url}/mj/submit/imagine",
        json={"prompt": "a cat"},
        headers={"mj-api-secret": f"sk-{token.key}"},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["code"] == 1, r.text
    wait_for(lambda: len(webhook.received) >= 1)
    payload = parse(webhook.received[0][1])
    assert payload["type"] == "quota_exceed"


def test_the_limit_holds_across_two_gateways(notify_gateway, fake_upstream, mail_options):
    second = start_gateway({"CELERY_QUEUE": notify_gateway.queue})
    try:
        make_channel(fake_upstream.base_url, key="notify-two")
        user = make_user("twomail", quota=START, email="twomail@example.test")
        _setting(user, notify_type="email", quota_warning_threshold=10**12)
        token = make_token(user)
        for gw in [notify_gateway, second] * 3:
            _chat(gw, token, 1)
        wait_for(lambda: len(mail_options.messages) >= 2)
        time.sleep(2)
        assert len(mail_options.messages) == 2
    finally:
        second.stop()
