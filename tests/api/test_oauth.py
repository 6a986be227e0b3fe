"""OAuth logins: state check, OIDC and WeChat against a real fake provider, Telegram widget hashes."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from accounts.models import User
from newapi_site.options import update_option
from tests.api.fake_oauth import FakeOAuth
from tests.api_client import Api

BOT_TOKEN = "123456:telegram-bot-token"


@pytest.fixture(scope="module")
def provider() -> FakeOAuth:
    return FakeOAuth().start()


@pytest.fixture
def oidc(provider, db):
    update_option("oidc.client_id", "cid")
    update_option("oidc.client_secret", "csecret")
    update_option("oidc.token_endpoint", provider.url + "/token")
    update_option("oidc.user_info_endpoint", provider.url + "/userinfo")
    update_option("oidc.enabled", "true")
    return provider


def test_state_is_required(oidc):
    anon = Api()
    oidc.users["c1"] = {"sub": "s1", "email": "s1@example.com"}
    anon.get("/api/oauth/oidc", {"code": "c1", "state": "guess"})
    assert anon.status == 403


def test_oidc_registers_then_logs_in(oidc, alice):
    oidc.users["c2"] = {"sub": "sub-2", "email": "o@example.com", "preferred_username": "oliver", "name": "Oliver"}
    anon = Api()
    state = anon.get("/api/oauth/state", {"aff": alice.aff_code or ""})["data"]
    assert len(state) == 12
    body = anon.get("/api/oauth/oidc", {"code": "c2", "state": state})
    assert body["success"], body
    user = User.objects.get(oidc_id="sub-2")
    assert (user.username, user.email, user.display_name) == ("oliver", "o@example.com", "Oliver")
    assert oidc.token_requests[-1]["client_secret"] == "csecret"
    # the session is live: /api/user/self works with the header
    assert anon.get("/api/user/self", HTTP_NEW_API_USER=str(user.pk))["data"]["id"] == user.pk
    # a second login finds the same account
    other = Api()
    state = other.get("/api/oauth/state")["data"]
    assert other.get("/api/oauth/oidc", {"code": "c2", "state": state})["data"]["id"] == user.pk
    assert User.objects.filter(oidc_id="sub-2").count() == 1


def test_oidc_binds_when_logged_in(oidc, alice):
    from rest_framework.test import APIClient

    oidc.users["c3"] = {"sub": "sub-3", "email": "a@example.com"}
    api = Api()
    api.client = APIClient()
    api.client.post("/api/user/login", {"username": "alice", "password": "alice-password"}, format="json")
    state = api.get("/api/oauth/state")["data"]
    assert api.get("/api/oauth/oidc", {"code": "c3", "state": state})["message"] == "bind"
    assert User.objects.get(pk=alice.pk).oidc_id == "sub-3"


def test_oidc_disabled_and_register_disabled(oidc):
    oidc.users["c4"] = {"sub": "sub-4", "email": "x@example.com"}
    update_option("RegisterEnabled", "false")
    anon = Api()
    state = anon.get("/api/oauth/state")["data"]
    assert anon.get("/api/oauth/oidc", {"code": "c4", "state": state})["success"] is False
    update_option("oidc.enabled", "false")
    assert anon.get("/api/oauth/oidc", {"code": "c4", "state": state})["success"] is False


def test_wechat_login(provider, db):
    update_option("WeChatServerAddress", provider.url)
    update_option("WeChatServerToken", "wechat-server-token")
    update_option("WeChatAuthEnabled", "true")
    anon = Api()
    assert anon.get("/api/oauth/wechat", {"code": "bad"})["success"] is False
    body = anon.get("/api/oauth/wechat", {"code": "good"})
    assert body["success"] and User.objects.get(wechat_id="wx-openid-1").username.startswith("wechat_")


# -- Telegram ------------------------------------------------------------------------------
def _widget(**fields) -> dict[str, str]:
    fields = {k: str(v) for k, v in fields.items()}
    check = "\n".join(f"{k}={fields[k]}" for k in sorted(fields))
    secret = hashlib.sha256(BOT_TOKEN.encode()).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return fields


@pytest.fixture
def telegram(db):
    update_option("TelegramBotToken", BOT_TOKEN)
    update_option("TelegramOAuthEnabled", "true")


def test_telegram_login_needs_a_bound_account(telegram, alice):
    params = _widget(id=4242, first_name="Al", auth_date=int(time.time()))
    assert Api().get("/api/oauth/telegram/login", params)["message"] == "该 Telegram 账户未绑定"
    User.objects.filter(pk=alice.pk).update(telegram_id="4242")
    body = Api().get("/api/oauth/telegram/login", params)
    assert body["success"] and body["data"]["id"] == alice.pk


def test_telegram_rejects_bad_hash_and_stale_auth_date(telegram, alice):
    User.objects.filter(pk=alice.pk).update(telegram_id="4242")
    params = _widget(id=4242, auth_date=int(time.time()))
    params["id"] = "4243"  # tampered after signing
    assert Api().get("/api/oauth/telegram/login", params)["success"] is False
    stale = _widget(id=4242, auth_date=int(time.time()) - 2 * 86400)
    body = Api().get("/api/oauth/telegram/login", stale)
    assert body["success"] is False and "过期" in body["message"]


def test_telegram_bind_redirects(telegram, alice):
    from rest_framework.test import APIClient

    client = APIClient()
    client.post("/api/user/login", {"username": "alice", "password": "alice-password"}, format="json")
    state = client.get("/api/oauth/state").json()["data"]
    resp = client.get("/api/oauth/telegram/bind", {**_widget(id=777, auth_date=int(time.time())), "state": state})
    assert resp.status_code == 302 and resp["Location"] == "/setting"
    assert User.objects.get(pk=alice.pk).telegram_id == "777"
