"""Login, session, the New-Api-User header, live role/status checks, register, setup."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Setup, Token, User
from billing.models import Log
from newapi_site.options import update_option
from newapi_site.roles import ROLE_ADMIN, ROLE_COMMON, ROLE_ROOT
from tests.api_client import Api
from tests.conftest import make_user


def login(client: APIClient, username: str, password: str) -> dict:
    return client.post("/api/user/login", {"username": username, "password": password}, format="json").json()


def test_login_sets_session_and_returns_summary(alice):
    client = APIClient()
    body = login(client, "alice", "alice-password")
    assert body["success"] is True
    assert body["data"] == {"id": alice.pk, "username": "alice", "display_name": "alice", "role": 1,
                            "status": 1, "group": "default"}
    assert client.cookies["session"]["samesite"] == "Strict"
    assert client.cookies["session"]["httponly"]
    me = client.get("/api/user/self", HTTP_NEW_API_USER=str(alice.pk)).json()
    assert me["success"] and me["data"]["id"] == alice.pk


def test_login_by_email(db):
    make_user("carol", email="carol@example.com")
    body = login(APIClient(), "carol@example.com", "carol-password")
    assert body["success"] and body["data"]["username"] == "carol"


def test_login_wrong_password_and_banned(alice):
    assert login(APIClient(), "alice", "nope-nope")["success"] is False
    alice.status = 2
    alice.save()
    body = login(APIClient(), "alice", "alice-password")
    assert body["success"] is False


def test_session_without_or_with_wrong_header_is_401(alice, bob):
    client = APIClient()
    login(client, "alice", "alice-password")
    resp = client.get("/api/user/self")
    assert resp.status_code == 401 and resp.json()["success"] is False
    resp = client.get("/api/user/self", HTTP_NEW_API_USER=str(bob.pk))
    assert resp.status_code == 401


def test_anonymous_is_401(anon, db):
    body = anon.get("/api/user/self")
    assert anon.status == 401 and body["success"] is False


def test_bad_access_token_is_401(alice):
    client = APIClient()
    resp = client.get("/api/user/self", HTTP_AUTHORIZATION="Bearer nope", HTTP_NEW_API_USER=str(alice.pk))
    assert resp.status_code == 401


def test_access_token_with_bearer_prefix(alice):
    api = Api(alice)
    api.client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.access_token}", HTTP_NEW_API_USER=str(alice.pk))
    assert api.get("/api/user/self")["success"] is True


def test_ban_takes_effect_at_once_for_session(alice):
    client = APIClient()
    login(client, "alice", "alice-password")
    User.objects.filter(pk=alice.pk).update(status=2)
    body = client.get("/api/user/self", HTTP_NEW_API_USER=str(alice.pk)).json()
    assert body == {"success": False, "message": "用户已被封禁"}


def test_demotion_takes_effect_at_once(admin_user):
    client = APIClient()
    login(client, "admin1", "admin1-password")
    assert client.get("/api/user/", HTTP_NEW_API_USER=str(admin_user.pk)).json()["success"] is True
    User.objects.filter(pk=admin_user.pk).update(role=ROLE_COMMON)
    body = client.get("/api/user/", HTTP_NEW_API_USER=str(admin_user.pk)).json()
    assert body == {"success": False, "message": "权限不足"}


def test_deleted_user_session_is_dead(alice):
    client = APIClient()
    login(client, "alice", "alice-password")
    assert client.delete("/api/user/self", HTTP_NEW_API_USER=str(alice.pk)).json()["success"]
    client2 = APIClient()
    assert login(client2, "alice", "alice-password")["success"] is False


def test_logout_clears_session(alice):
    client = APIClient()
    login(client, "alice", "alice-password")
    assert client.get("/api/user/logout").json()["success"]
    assert client.get("/api/user/self", HTTP_NEW_API_USER=str(alice.pk)).status_code == 401


def test_post_without_csrf_token_works_for_scripts(alice):
    client = APIClient(enforce_csrf_checks=True)
    login(client, "alice", "alice-password")
    body = client.post("/api/token/", {"name": "script"}, format="json", HTTP_NEW_API_USER=str(alice.pk)).json()
    assert body["success"], body


# -- registration -------------------------------------------------------------------------
def test_register_then_login(db):
    anon = Api()
    body = anon.post("/api/user/register", {"username": "dave", "password": "dave-password"})
    assert body == {"success": True, "message": ""}
    user = User.objects.get(username="dave")
    assert user.role == ROLE_COMMON and user.display_name == "dave" and len(user.aff_code) == 4
    assert login(APIClient(), "dave", "dave-password")["success"]


@pytest.mark.parametrize("payload", [
    {"username": "x" * 13, "password": "password1"},
    {"username": "eve", "password": "short"},
    {"username": "eve", "password": "p" * 21},
    {"username": "", "password": "password1"},
])
def test_register_validation(db, payload):
    body = Api().post("/api/user/register", payload)
    assert body["success"] is False and body["message"]


def test_register_refuses_deleted_username(alice):
    Api(alice).delete("/api/user/self")
    body = Api().post("/api/user/register", {"username": "alice", "password": "password1"})
    assert body["success"] is False and "已注销" in body["message"]


def test_register_disabled(db):
    update_option("RegisterEnabled", "false")
    assert Api().post("/api/user/register", {"username": "dave", "password": "password1"})["success"] is False


def test_register_with_invitation_rewards(alice):
    update_option("QuotaForNewUser", "100")
    update_option("QuotaForInvitee", "50")
    update_option("QuotaForInviter", "70")
    code = Api(alice).get("/api/user/aff")["data"]
    assert Api().post("/api/user/register", {"username": "dave", "password": "password1", "aff_code": code})["success"]
    dave = User.objects.get(username="dave")
    assert dave.quota == 150 and dave.inviter_id == alice.pk
    alice.refresh_from_db()
    assert (alice.aff_count, alice.aff_quota, alice.aff_history) == (1, 70, 70)
    assert alice.quota == 10_000_000  # invitation rewards are not directly spendable
    assert Log.objects.filter(user_id=dave.pk, type=4).count() == 2


def test_generate_default_token(db, settings):
    settings.GENERATE_DEFAULT_TOKEN = True
    assert Api().post("/api/user/register", {"username": "dave", "password": "password1"})["success"]
    token = Token.objects.get(user_id=User.objects.get(username="dave").pk)
    assert token.name == "dave的初始令牌" and token.unlimited_quota


# -- setup ----------------------------------------------------------------------------------
def test_setup_flow(db):
    anon = Api()
    body = anon.get("/api/setup")
    assert body["data"]["status"] is False and body["data"]["root_init"] is False
    assert body["data"]["database_type"] in ("postgres", "mysql", "sqlite")
    bad = anon.post("/api/setup", {"username": "root", "password": "password1", "confirmPassword": "other"})
    assert anon.status == 400 and bad["success"] is False
    body = anon.post("/api/setup", {"username": "root", "password": "password1", "confirmPassword": "password1",
                                    "SelfUseModeEnabled": True, "DemoSiteEnabled": False})
    assert body["success"] and body["message"] == "系统初始化成功"
    root = User.objects.get(username="root")
    assert root.role == ROLE_ROOT and root.quota == 100_000_000 and root.access_token is None
    assert Setup.objects.exists()
    assert anon.get("/api/setup")["data"] == {"status": True}
    assert anon.post("/api/setup", {"username": "x", "password": "password1", "confirmPassword": "password1"})["success"] is False
    assert anon.get("/api/status")["data"]["self_use_mode_enabled"] is True


def test_setup_marks_existing_root_database(root_user):
    assert Api().get("/api/setup")["data"] == {"status": True}


# -- self-service -----------------------------------------------------------------------------
def test_update_self_requires_original_password(as_alice, alice):
    body = as_alice.put("/api/user/self", {"password": "new-password"})
    assert body["success"] is False
    body = as_alice.put("/api/user/self", {"password": "new-password", "original_password": "alice-password",
                                           "display_name": "Alice"})
    assert body["success"], body
    assert login(APIClient(), "alice", "new-password")["success"]
    assert User.objects.get(pk=alice.pk).display_name == "Alice"


def test_update_self_username_conflict(as_alice, bob):
    assert as_alice.put("/api/user/self", {"username": "bob"})["success"] is False


def test_root_cannot_delete_self(as_root):
    assert as_root.delete("/api/user/self")["success"] is False


def test_access_token_regenerates(alice):
    api = Api(alice)
    token = api.get("/api/user/token")["data"]
    assert isinstance(token, str) and len(token) == 32
    fresh = APIClient()
    assert fresh.get("/api/user/self", HTTP_AUTHORIZATION=token, HTTP_NEW_API_USER=str(alice.pk)).json()["success"]
    # the old token no longer works
    assert api.get("/api/user/self") and api.status == 401


def test_aff_code_created_lazily(alice):
    User.objects.filter(pk=alice.pk).update(aff_code=None)
    api = Api(alice)
    code = api.get("/api/user/aff")["data"]
    assert len(code) == 4 and api.get("/api/user/aff")["data"] == code


def test_aff_transfer(alice):
    User.objects.filter(pk=alice.pk).update(aff_quota=600_000)
    api = Api(alice)
    assert api.post("/api/user/aff_transfer", {"quota": 100})["success"] is False  # below $1
    assert api.post("/api/user/aff_transfer", {"quota": 700_000})["success"] is False  # more than owned
    body = api.post("/api/user/aff_transfer", {"quota": 500_000})
    assert body["success"] and body["message"] == "划转成功"
    alice.refresh_from_db()
    assert alice.aff_quota == 100_000 and alice.quota == 10_500_000


def test_notification_setting(as_alice, alice):
    import json

    assert as_alice.put("/api/user/setting", {"notify_type": "webhook", "quota_warning_threshold": 10,
                                              "webhook_url": "not a url"})["success"] is False
    assert as_alice.put("/api/user/setting", {"notify_type": "email", "quota_warning_threshold": 0})["success"] is False
    body = as_alice.put("/api/user/setting", {"notify_type": "webhook", "quota_warning_threshold": 5000,
                                              "webhook_url": "https://hooks.example.com/x", "webhook_secret": "s",
                                              "notification_email": "ignored@example.com"})
    assert body["success"], body
    alice.refresh_from_db()
    assert json.loads(alice.setting) == {"notify_type": "webhook", "quota_warning_threshold": 5000,
                                         "accept_unset_model_ratio_model": False,
                                         "webhook_url": "https://hooks.example.com/x", "webhook_secret": "s"}
    assert Api().put("/api/user/setting", {}) == {"success": False, "message": "无权进行此操作，未登录且未提供 access token"}
