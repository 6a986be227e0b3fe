"""Redemption codes: admin CRUD and exactly-once redemption, also under a 50-request race."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from accounts.models import User
from billing.models import Log, Redemption
from tests.api_client import Api
from tests.conftest import live, make_user


def _create(api: Api, count: int = 2, quota: int = 1000, name: str = "promo") -> list[str]:
    body = api.post("/api/redemption/", {"name": name, "count": count, "quota": quota})
    assert body["success"], body
    return body["data"]


def test_create_list_search_get(as_admin, admin_user):
    keys = _create(as_admin, count=3)
    assert len(keys) == 3 and all(len(k) == 32 and int(k, 16) >= 0 for k in keys)
    assert set(Redemption.objects.values_list("user_id", flat=True)) == {admin_user.pk}
    data = as_admin.get("/api/redemption/", {"p": 1, "page_size": 2})["data"]
    assert data["total"] == 3 and len(data["items"]) == 2 and data["page"] == 1
    assert as_admin.get("/api/redemption/", {"p": 0, "page_size": 2})["data"]["items"] == data["items"]
    assert len(as_admin.get("/api/redemption/", {"p": 2, "page_size": 2})["data"]["items"]) == 1
    _create(as_admin, count=1, name="other")
    found = as_admin.get("/api/redemption/search", {"keyword": "oth"})["data"]["items"]
    assert [r["name"] for r in found] == ["other"]
    code = Redemption.objects.get(key=keys[0])
    assert as_admin.get("/api/redemption/search", {"keyword": str(code.pk)})["data"]["items"][0]["id"] == code.pk
    assert as_admin.get(f"/api/redemption/{code.pk}")["data"]["key"] == keys[0]


@pytest.mark.parametrize("payload", [
    {"name": "", "count": 1, "quota": 1},
    {"name": "x" * 21, "count": 1, "quota": 1},
    {"name": "ok", "count": 0, "quota": 1},
    {"name": "ok", "count": 101, "quota": 1},
    {"name": "ok", "count": 1, "quota": 0},
])
def test_create_validation(as_admin, payload):
    assert as_admin.post("/api/redemption/", payload)["success"] is False


def test_update_and_delete(as_admin, as_alice):
    key = _create(as_admin, count=1)[0]
    code = Redemption.objects.get(key=key)
    body = as_admin.put("/api/redemption/", {"id": code.pk, "name": "renamed", "quota": 42})
    assert body["data"]["name"] == "renamed" and body["data"]["quota"] == 42
    assert as_admin.put("/api/redemption/?status_only=true", {"id": code.pk, "status": 2})["data"]["status"] == 2
    assert as_alice.post("/api/user/topup", {"key": key})["message"] == "该兑换码已被禁用"
    as_admin.put("/api/redemption/?status_only=true", {"id": code.pk, "status": 1})
    assert as_alice.post("/api/user/topup", {"key": key})["data"] == 42
    # a used code cannot be switched back on
    assert as_admin.put("/api/redemption/?status_only=true", {"id": code.pk, "status": 1})["success"] is False
    assert as_admin.delete(f"/api/redemption/{code.pk}")["success"]
    assert Redemption.objects.get(pk=code.pk).deleted_at is not None
    assert as_admin.get("/api/redemption/")["data"]["total"] == 0


def test_redeem(as_admin, as_alice, alice):
    key = _create(as_admin, count=1, quota=5000)[0]
    body = as_alice.post("/api/user/topup", {"key": key})
    assert body == {"success": True, "message": "", "data": 5000}
    alice.refresh_from_db()
    assert alice.quota == 10_005_000
    code = Redemption.objects.get(key=key)
    assert (code.status, code.used_user_id) == (3, alice.pk) and code.redeemed_time > 0
    assert Log.objects.filter(user_id=alice.pk, type=1, content__contains=f"兑换码ID {code.pk}").exists()
    assert as_alice.post("/api/user/topup", {"key": key})["message"] == "该兑换码已被使用"
    assert as_alice.post("/api/user/topup", {"key": "nope"})["message"] == "无效的兑换码"


def test_deleted_code_cannot_be_redeemed(as_admin, as_alice):
    key = _create(as_admin, count=1)[0]
    as_admin.delete(f"/api/redemption/{Redemption.objects.get(key=key).pk}")
    assert as_alice.post("/api/user/topup", {"key": key})["message"] == "无效的兑换码"


@live
def test_fifty_concurrent_redemptions_credit_once():
    admin = make_user("racer-admin", role=10)
    users = [make_user(f"racer{i}", quota=0) for i in range(5)]
    code = Redemption.objects.create(user_id=admin.pk, key="f" * 32, name="race", quota=777)
    tokens = [Api(u).user.access_token for u in users]  # one access token per user, shared by 10 threads
    clients = []
    for i in range(50):
        api = Api()
        user = users[i % 5]
        api.client.credentials(HTTP_AUTHORIZATION=tokens[i % 5], HTTP_NEW_API_USER=str(user.pk))
        clients.append(api)
    barrier = threading.Barrier(50)
    results: list[dict] = [{} for _ in range(50)]

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = clients[i].post("/api/user/topup", {"key": code.key})
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.get("success")]
    assert len(winners) == 1, results
    assert sum(User.objects.filter(pk__in=[u.pk for u in users]).values_list("quota", flat=True)) == 777
    assert Log.objects.filter(type=1).count() == 1
    assert all(r["message"] == "该兑换码已被使用" for r in results if not r.get("success"))
    assert connection.vendor in ("postgresql", "mysql", "sqlite")
