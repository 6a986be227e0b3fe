from __future__ import annotations


def test_status_public(anon, db):
    body = anon.get("/api/status")
    assert body["success"] is True
    assert body["data"]["system_name"] == "New API"
    assert "setup" in body["data"]


def test_self(as_alice):
    body = as_alice.get("/api/user/self")
    assert body["success"], body
    assert body["data"]["username"] == "alice"
    assert body["data"]["password"] == ""
