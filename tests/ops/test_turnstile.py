"""Turnstile on verification, reset_password, register and login, against a real fake verifier."""

from __future__ import annotations

import pytest
from django.test import Client

from newapi_site.options import update_option
from tests.fakes.turnstile import FakeTurnstile

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def verifier() -> FakeTurnstile:
    return FakeTurnstile().start()


@pytest.fixture
def turnstile_on(settings, verifier):
    settings.TURNSTILE_VERIFY_URL = verifier.url
    verifier.forms.clear()
    update_option("TurnstileSiteKey", "site-key")
    update_option("TurnstileSecretKey", "secret-key")
    update_option("TurnstileCheckEnabled", "true")
    return verifier


_ip = iter(range(1, 250))


def fresh_client() -> Client:
    return Client(REMOTE_ADDR=f"10.77.0.{next(_ip)}")  # its own critical rate-limit bucket


def login(client: Client, user, turnstile: str | None = None) -> dict:
    path = "/api/user/login" + (f"?turnstile={turnstile}" if turnstile is not None else "")
    payload = {"username": user.username, "password": f"{user.username}-password"}
    return client.post(path, payload, content_type="application/json").json()


def test_off_by_default(alice, verifier):
    assert login(fresh_client(), alice)["success"] is True
    assert verifier.forms == []


def test_login_needs_a_verified_token_once_per_session(alice, turnstile_on):
    client = fresh_client()
    assert login(client, alice) == {"success": False, "message": "Turnstile token 为空"}
    assert login(client, alice, "bad-token") == {"success": False, "message": "Turnstile 校验失败，请刷新重试！"}
    assert login(client, alice, "good-token")["success"] is True
    assert turnstile_on.forms[-1] == {"secret": ["secret-key"], "response": ["good-token"], "remoteip": [client.defaults["REMOTE_ADDR"]]}
    seen = len(turnstile_on.forms)
    assert login(client, alice)["success"] is True  # remembered in the session
    assert len(turnstile_on.forms) == seen
    assert login(fresh_client(), alice)["message"] == "Turnstile token 为空"  # another session is checked again


def test_other_guarded_routes(turnstile_on):
    client = fresh_client()
    for method, path in (("get", "/api/verification?email=a@example.com"), ("get", "/api/reset_password?email=a@example.com"),
                         ("post", "/api/user/register")):
        response = getattr(client, method)(path, {} if method == "post" else None, **({"content_type": "application/json"} if method == "post" else {}))
        assert response.json() == {"success": False, "message": "Turnstile token 为空"}, path
    bad = client.get("/api/verification?email=a@example.com&turnstile=nope").json()
    assert bad["message"] == "Turnstile 校验失败，请刷新重试！"
    registered = client.post("/api/user/register?turnstile=good-token",
                             {"username": "tsuser", "password": "password123"}, content_type="application/json").json()
    assert registered["success"] is True, registered
    from accounts.models import User

    assert User.objects.filter(username="tsuser").exists()


def test_unreachable_verifier_is_a_refusal(alice, turnstile_on, settings):
    settings.TURNSTILE_VERIFY_URL = "http://127.0.0.1:9/siteverify"
    body = login(fresh_client(), alice, "good-token")
    assert body["success"] is False and "Turnstile" in body["message"]


def test_unguarded_routes_are_not_checked(as_alice, turnstile_on):
    assert as_alice.get("/api/user/self")["success"] is True
