"""Browser preflights on the key-authenticated and public routes third-party key tools call."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import live, make_token, make_user

pytestmark = [live, pytest.mark.relay]
PREFLIGHT = {
    "Origin": "https://tool.example.test",
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization",
}
PATHS = [
    "/v1/dashboard/billing/subscription",
    "/v1/dashboard/billing/usage",
    "/dashboard/billing/subscription",
    "/dashboard/billing/usage",
    "/v1/models",
    "/api/log/token",
]


@pytest.mark.parametrize("path", PATHS)
def test_preflight_answers_with_cors_headers(gateway, path):
    r = httpx.options(gateway.url + path, headers=PREFLIGHT)
    assert r.status_code == 204, r.text
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "GET" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "*"
    assert r.content == b""


def test_the_calls_after_the_preflight_carry_the_origin_header(gateway):
    token = make_token(make_user("corsy"), unlimited_quota=False, remain_quota=500_000)
    auth = {"Origin": "https://tool.example.test", "Authorization": f"Bearer sk-{token.key}"}
    for path in [*PATHS[:2], "/v1/models"]:
        r = httpx.get(gateway.url + path, headers=auth)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["access-control-allow-origin"] == "*"
    r = httpx.get(f"{gateway.url}/api/log/token", params={"key": f"sk-{token.key}"}, headers=auth)
    assert r.status_code == 200 and r.json()["success"] is True
    assert r.headers["access-control-allow-origin"] == "*"
    bad = httpx.get(
        gateway.url + PATHS[0],
        headers={"Origin": "https://tool.example.test", "Authorization": "Bearer sk-nope"},
    )
    assert bad.status_code == 401 and bad.headers["access-control-allow-origin"] == "*"
