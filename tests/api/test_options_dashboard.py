"""Options (root only), key-based usage endpoints (§4), the global /api rate limit."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from accounts.models import Option, User
from newapi_site.api import ratelimit
from newapi_site.options import options, update_option
from tests.conftest import make_token


def test_get_options_hides_secrets(as_root):
    update_option("SMTPToken", "smtp-secret")
    update_option("GitHubClientSecret", "gh-secret")
    data = as_root.get("/api/option/")["data"]
    keys = {row["key"] for row in data}
    assert "SystemName" in keys and "QuotaPerUnit" in keys
    assert not any(k.endswith(("Token", "Secret", "Key")) for k in keys)
    assert "smtp-secret" not in str(data) and "gh-secret" not in str(data)


def test_put_option(as_root):
    assert as_root.put("/api/option/", {"key": "SystemName", "value": "My Gateway"})["success"]
    assert Option.objects.get(key="SystemName").value == "My Gateway"
    assert options.get("SystemName") == "My Gateway"
    assert as_root.put("/api/option/", {"key": "DrawingEnabled", "value": False})["success"]
    assert options.get("DrawingEnabled") == "false"


@pytest.mark.parametrize("key, value", [
    ("GitHubOAuthEnabled", "true"),
    ("oidc.enabled", "true"),
    ("LinuxDOOAuthEnabled", "true"),
    ("WeChatAuthEnabled", "true"),
    ("TurnstileCheckEnabled", "true"),
    ("TelegramOAuthEnabled", "true"),
    ("GroupRatio", "{not json"),
    ("GroupRatio", '{"default": -1}'),
    ("ModelRatio", "[1,2]"),
])
def test_put_option_validation(as_root, key, value):
    before = Option.objects.filter(key=key).exists()
    assert as_root.put("/api/option/", {"key": key, "value": value})["success"] is False
    assert Option.objects.filter(key=key).exists() == before


def test_enable_github_after_client_id(as_root):
    update_option("EmailDomainWhitelist", "")
    assert as_root.put("/api/option/", {"key": "EmailDomainRestrictionEnabled", "value": "true"})["success"] is False
    update_option("GitHubClientId", "abc")
    assert as_root.put("/api/option/", {"key": "GitHubOAuthEnabled", "value": "true"})["success"]


def test_put_option_bad_body_is_400(as_root):
    as_root.put("/api/option/", {"value": "x"})
    assert as_root.status == 400


def test_reset_model_ratio(as_root):
    update_option("ModelRatio", '{"x": 1}')
    assert as_root.post("/api/option/rest_model_ratio")["success"]
    assert "gpt-4o" in options.get_json("ModelRatio")


# -- key usage ----------------------------------------------------------------------------------
def _bearer(token) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer sk-{token.key}"}


def test_subscription_and_usage(alice):
    token = make_token(alice, unlimited_quota=False, remain_quota=1_500_000, used_quota=500_000,
                       expired_time=int(time.time()) + 3600)
    client = Client()
    sub = client.get("/v1/dashboard/billing/subscription", **_bearer(token)).json()
    assert sub == {"object": "billing_subscription", "has_payment_method": True, "soft_limit_usd": 4.0,
                   "hard_limit_usd": 4.0, "system_hard_limit_usd": 4.0, "access_until": token.expired_time}
    usage = client.get("/v1/dashboard/billing/usage?start_date=2024-01-01&end_date=2024-02-01", **_bearer(token)).json()
    assert usage == {"object": "list", "total_usage": 100.0}
    assert client.get("/dashboard/billing/usage", **_bearer(token)).status_code == 200


def test_subscription_unlimited_and_user_stats(alice):
    token = make_token(alice)  # unlimited
    client = Client()
    assert client.get("/v1/dashboard/billing/subscription", **_bearer(token)).json()["hard_limit_usd"] == 100000000
    update_option("DisplayTokenStatEnabled", "false")
    User.objects.filter(pk=alice.pk).update(used_quota=250_000)
    assert client.get("/v1/dashboard/billing/usage", **_bearer(token)).json()["total_usage"] == 50.0


def test_key_auth_errors(alice):
    client = Client()
    resp = client.get("/v1/dashboard/billing/subscription")
    assert resp.status_code == 401 and resp.json()["error"]["type"] == "new_api_error"
    assert client.get("/v1/dashboard/billing/subscription", HTTP_AUTHORIZATION="Bearer sk-nope").status_code == 401
    exhausted = make_token(alice, name="empty", unlimited_quota=False, remain_quota=0)
    assert client.get("/v1/dashboard/billing/subscription", **_bearer(exhausted)).status_code == 403
    expired = make_token(alice, name="old", expired_time=int(time.time()) - 5)
    assert client.get("/v1/dashboard/billing/subscription", **_bearer(expired)).status_code == 403
    ok = make_token(alice, name="ok")
    User.objects.filter(pk=alice.pk).update(status=2)
    assert client.get("/v1/dashboard/billing/subscription", **_bearer(ok)).status_code == 403


# -- rate limit -------------------------------------------------------------------------------
@pytest.mark.parametrize("use_redis", [True, False])
def test_global_api_rate_limit(db, settings, use_redis):
    if use_redis and not settings.REDIS_CONN_STRING:
        pytest.skip("no Redis in this run")
    if not use_redis:
        settings.REDIS_CONN_STRING = ""
    settings.GLOBAL_API_RATE_LIMIT_ENABLE = True
    settings.GLOBAL_API_RATE_LIMIT = 3
    settings.GLOBAL_API_RATE_LIMIT_DURATION = 60
    ratelimit.reset_memory()
    client = Client(REMOTE_ADDR=f"10.9.8.{7 if use_redis else 6}")
    if use_redis:
        from newapi_site import redis as r

        r.sync_redis().delete(r.key("rateLimit", "GA10.9.8.7"))
    codes = [client.get("/api/status").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert client.get("/api/status").content == b""
    assert Client(REMOTE_ADDR="10.9.8.99").get("/api/status").status_code == 200
    ratelimit.reset_memory()


def test_critical_rate_limit_on_login(db, settings):
    settings.REDIS_CONN_STRING = ""
    settings.GLOBAL_API_RATE_LIMIT_ENABLE = True
    settings.GLOBAL_API_RATE_LIMIT = 1000
    ratelimit.reset_memory()
    client = Client(REMOTE_ADDR="10.9.8.5")
    codes = [client.post("/api/user/login", {"username": "x", "password": "y"},
                         content_type="application/json").status_code for _ in range(21)]
    assert codes[:20] == [200] * 20 and codes[20] == 429
    assert client.get("/api/status").status_code == 200  # only the critical routes are capped at 20
    ratelimit.reset_memory()
