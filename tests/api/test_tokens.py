"""/api/token/*: owner-only API keys."""

from __future__ import annotations

import time

import pytest

from accounts.models import Token
from tests.conftest import make_token


def test_create_and_list(as_alice, alice):
    body = as_alice.post("/api/token/", {"name": "mine", "remain_quota": 1000, "expired_time": -1,
                                         "model_limits_enabled": True, "model_limits": "gpt-4o, gpt-4o-mini,gpt-4o",
                                         "allow_ips": "10.0.0.1\n192.168.0.0/16, 2001:db8::/32"})
    assert body["success"], body
    token = Token.objects.get(user_id=alice.pk, name="mine")
    assert token.model_limits == "gpt-4o,gpt-4o-mini"
    assert token.allow_ips == "10.0.0.1\n192.168.0.0/16\n2001:db8::/32"
    listed = as_alice.get("/api/token/")["data"]
    assert [t["key"] for t in listed] == [token.key]
    assert set(listed[0]) >= {"id", "user_id", "key", "status", "name", "created_time", "accessed_time",
                              "expired_time", "remain_quota", "unlimited_quota", "model_limits_enabled",
                              "model_limits", "allow_ips", "used_quota", "group", "DeletedAt"}


@pytest.mark.parametrize("payload, fragment", [
    ({"name": "x" * 31}, "name"),
    ({"name": "ok", "allow_ips": "not-an-ip"}, "IP"),
    ({"name": "ok", "allow_ips": "10.0.0.0/33"}, "IP"),
    ({"name": "ok", "group": "svip"}, "svip"),
    ({"name": "ok", "group": "nonexistent"}, "nonexistent"),
    ({"name": "ok", "remain_quota": -1}, "remain_quota"),
    ({"name": "ok", "expired_time": 1000}, ""),
])
def test_create_validation(as_alice, payload, fragment):
    body = as_alice.post("/api/token/", payload)
    assert body["success"] is False and fragment in body["message"]


def test_create_with_usable_group(as_alice, as_bob):
    assert as_alice.post("/api/token/", {"name": "g", "group": "vip"})["success"]  # in UserUsableGroups
    assert as_bob.post("/api/token/", {"name": "g", "group": "vip"})["success"]


def test_pagination_zero_based_with_size(as_alice, alice):
    tokens = [make_token(alice, name=f"t{i}") for i in range(5)]
    ids = [t.pk for t in reversed(tokens)]
    assert [t["id"] for t in as_alice.get("/api/token/", {"p": 0, "size": 2})["data"]] == ids[:2]
    assert [t["id"] for t in as_alice.get("/api/token/", {"p": 1, "size": 2})["data"]] == ids[2:4]
    assert [t["id"] for t in as_alice.get("/api/token/", {"p": 2, "size": 2})["data"]] == ids[4:]
    assert len(as_alice.get("/api/token/")["data"]) == 5  # size absent → 10


def test_alice_never_sees_bobs_tokens(as_alice, as_bob, bob, alice):
    bobs = make_token(bob, name="bob-secret")
    make_token(alice, name="alice-own")
    listed = as_alice.get("/api/token/")["data"]
    assert bobs.key not in str(listed)
    assert as_alice.get(f"/api/token/{bobs.pk}")["success"] is False
    assert as_alice.put("/api/token/", {"id": bobs.pk, "name": "stolen"})["success"] is False
    assert as_alice.put("/api/token/?status_only=true", {"id": bobs.pk, "status": 2})["success"] is False
    assert as_alice.delete(f"/api/token/{bobs.pk}")["success"] is False
    assert bobs.key not in str(as_alice.get("/api/token/search", {"token": bobs.key[:10]}))
    bobs.refresh_from_db()
    assert bobs.name == "bob-secret" and bobs.status == 1 and bobs.deleted_at is None


def test_get_update_delete(as_alice, alice):
    token = make_token(alice, name="one", unlimited_quota=False, remain_quota=5)
    assert as_alice.get(f"/api/token/{token.pk}")["data"]["key"] == token.key
    body = as_alice.put("/api/token/", {"id": token.pk, "name": "renamed", "remain_quota": 10, "expired_time": -1})
    assert body["success"] and body["data"]["name"] == "renamed" and body["data"]["remain_quota"] == 10
    assert as_alice.delete(f"/api/token/{token.pk}")["success"]
    token.refresh_from_db()
    assert token.deleted_at is not None
    assert as_alice.get("/api/token/")["data"] == []


def test_status_only_refuses_enabling_expired_or_exhausted(as_alice, alice):
    expired = make_token(alice, name="old", status=3, expired_time=int(time.time()) - 10)
    empty = make_token(alice, name="empty", status=4, unlimited_quota=False, remain_quota=0)
    assert as_alice.put("/api/token/?status_only=true", {"id": expired.pk, "status": 1})["success"] is False
    assert as_alice.put("/api/token/?status_only=true", {"id": empty.pk, "status": 1})["success"] is False
    body = as_alice.put("/api/token/?status_only=true", {"id": expired.pk, "status": 2})
    assert body["success"] and body["data"]["status"] == 2


def test_fixing_an_expired_token_reenables_it(as_alice, alice):
    token = make_token(alice, name="old", status=3, expired_time=int(time.time()) - 10)
    body = as_alice.put("/api/token/", {"id": token.pk, "name": "old", "expired_time": -1, "unlimited_quota": True})
    assert body["success"] and body["data"]["status"] == 1


def test_search(as_alice, alice):
    a = make_token(alice, name="prod-key")
    make_token(alice, name="dev-key")
    found = as_alice.get("/api/token/search", {"keyword": "prod"})["data"]
    assert [t["id"] for t in found] == [a.pk]
    found = as_alice.get("/api/token/search", {"token": "sk-" + a.key[:12]})["data"]
    assert [t["id"] for t in found] == [a.pk]
