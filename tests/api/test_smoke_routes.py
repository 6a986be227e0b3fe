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


def test_openapi_schema(anon, db):
    resp = anon.client.get("/api/schema/?format=json")
    assert resp.status_code == 200
    schema = resp.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert any(p.startswith("/api/token") for p in paths) and any(p.startswith("/api/channel") for p in paths)
    assert "accessToken" in schema["components"]["securitySchemes"]
