"""Relay rules through a live gateway: auth checks, routing, mappings, quota races."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from accounts.models import Token, User
from billing.models import Log, QuotaData
from newapi_site.roles import ROLE_ADMIN
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle

pytestmark = [live, pytest.mark.relay]
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def post(gateway, key: str, body: dict | None = None, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.v1}/chat/completions", json=body or CHAT, headers={"Authorization": f"Bearer sk-{key}", **headers}, timeout=20
    )


def test_token_status_expiry_and_model_limits(gateway, fake_upstream):
    make_channel(fake_upstream.base_url)
    user = make_user("jack")
    assert post(gateway, make_token(user, status=2).key).status_code == 401
    assert post(gateway, make_token(user, expired_time=1).key).status_code == 401
    limited = make_token(user, model_limits_enabled=True, model_limits="gpt-4o")
    r = post(gateway, limited.key)
    assert r.status_code == 403 and "gpt-4o-mini" in r.json()["error"]["message"]
    banned = make_user("kate", status=2)
    assert post(gateway, make_token(banned).key).status_code == 403


def test_quota_checks_refuse_and_change_nothing(gateway, fake_upstream):
    make_channel(fake_upstream.base_url)
    broke = make_user("leo", quota=0)
    r = post(gateway, make_token(broke).key)
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_user_quota"
    user = make_user("mia", quota=1_000_000)
    small = make_token(user, unlimited_quota=False, remain_quota=30)  # the estimate is 500 × 0.075 = 37
    r = post(gateway, small.key)
    assert r.status_code == 403 and r.json()["error"]["code"] == "pre_consume_token_quota_failed"
    settle()
    user.refresh_from_db()
    small.refresh_from_db()
    assert (user.quota, small.remain_quota) == (1_000_000, 30)


def test_pinned_channel_is_for_admins_only(gateway, fake_upstream):
    first = make_channel(fake_upstream.base_url, key="first", priority=5)
    second = make_channel(fake_upstream.base_url, key="second", priority=0)
    admin = make_user("nina", role=ROLE_ADMIN)
    token = make_token(admin)
    assert post(gateway, f"{token.key}-{second.pk}").status_code == 200
    assert fake_upstream.requests[-1].key == "second"
    common = make_token(make_user("otto"))
    assert post(gateway, f"{common.key}-{first.pk}").status_code == 403


def test_model_mapping_and_status_code_mapping(gateway, fake_upstream):
    make_channel(fake_upstream.base_url, key="mapped", models="my-alias", model_mapping=json.dumps({"my-alias": "gpt-4o-mini"}))
    make_channel(fake_upstream.base_url, key="status-429", models="gpt-4o-mini", status_code_mapping=json.dumps({"429": "502"}))
    user = make_user("pia")
    token = make_token(user)
    from newapi_site.options import update_option

    update_option("ModelRatio", json.dumps({"my-alias": 1, "gpt-4o-mini": 0.075}))
    propagated()
    try:
        r = post(gateway, token.key, {**CHAT, "model": "my-alias"})
        assert r.status_code == 200
        assert fake_upstream.requests_for("mapped")[-1].body["model"] == "gpt-4o-mini"
        r = post(gateway, token.key)
        assert r.status_code == 502
        settle()
        log = Log.objects.get(user_id=user.pk)
        assert log.model_name == "my-alias" and json.loads(log.other)["upstream_model_name"] == "gpt-4o-mini"
    finally:
        from accounts.models import Option

        Option.objects.filter(key="ModelRatio").delete()


def test_racing_requests_never_overspend_a_token(gateway, fake_upstream):
    """20 requests race on a token that can hold only a few reservations at a time."""
    make_channel(fake_upstream.base_url)
    user = make_user("quinn", quota=1_000_000)
    token = make_token(user, unlimited_quota=False, remain_quota=100)  # each reservation holds 37
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: post(gateway, token.key).status_code, range(20)))
    assert set(results) <= {200, 403}
    settle()
    token.refresh_from_db()
    user.refresh_from_db()
    charged = sum(Log.objects.filter(token_id=token.pk).values_list("quota", flat=True))
    assert results.count(200) == Log.objects.filter(token_id=token.pk).count() >= 2
    assert token.remain_quota == 100 - charged >= 0
    assert token.used_quota == charged
    assert user.quota == 1_000_000 - charged
    rollup = QuotaData.objects.get(user_id=user.pk, model_name="gpt-4o-mini")
    assert (rollup.count, rollup.quota) == (results.count(200), charged)


def test_unknown_v1_path_and_not_implemented(gateway):
    r = httpx.get(f"{gateway.v1}/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    token = make_token(make_user("rex"))
    r = httpx.post(f"{gateway.v1}/files", headers={"Authorization": f"Bearer sk-{token.key}"})
    assert r.status_code == 501 and r.json()["error"]["code"] == "api_not_implemented"
