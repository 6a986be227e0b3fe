"""The client IP: forwarding headers count only from TRUSTED_PROXIES (relay, realtime, /api throttles)."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest

from newapi_site.client_ip import parse_networks, resolve
from tests.conftest import live, make_channel, make_token, make_user, propagated, start_gateway
from tests.relay.test_realtime import (  # noqa: F401
    MODEL,
    auth_kwargs,
    realtime_upstream,
    refused,
    session,
    session_log,
    ws_url,
)

pytestmark = [live]
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
ALLOWED = "203.0.113.7"


@pytest.fixture(scope="module")
def behind_proxy(django_db_setup, django_db_blocker):
    """A gateway told that 127.0.0.1 (the test itself) is its reverse proxy."""
    gw = start_gateway({"TRUSTED_PROXIES": "127.0.0.1,10.0.0.0/8"})
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def throttled_behind_proxy(django_db_setup, django_db_blocker):
    gw = start_gateway({
        "TRUSTED_PROXIES": "127.0.0.1", "GLOBAL_API_RATE_LIMIT_ENABLE": "true",
        "GLOBAL_API_RATE_LIMIT": "3", "GLOBAL_API_RATE_LIMIT_DURATION": "60",
    })
    yield gw
    gw.stop()


def chat(gw, key: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{gw.v1}/chat/completions", json=CHAT, headers={"Authorization": f"Bearer sk-{key}", **headers},
                      timeout=20)


def test_resolve_takes_the_rightmost_untrusted_hop(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "127.0.0.1"]
    assert resolve("127.0.0.1", "1.2.3.4, 5.6.7.8, 10.1.1.1", None) == "5.6.7.8"
    assert resolve("127.0.0.1", "1.2.3.4", "9.9.9.9") == "1.2.3.4"
    assert resolve("127.0.0.1", None, "9.9.9.9") == "9.9.9.9"
    assert resolve("10.1.1.1", "10.2.2.2, 10.3.3.3", None) == "10.2.2.2"
    assert resolve("::ffff:127.0.0.1", "1.2.3.4", None) == "1.2.3.4"
    assert resolve("8.8.8.8", "1.2.3.4", "1.2.3.4") == "8.8.8.8"  # the peer is no proxy of ours
    settings.TRUSTED_PROXIES = []
    assert resolve("127.0.0.1", "1.2.3.4", "1.2.3.4") == "127.0.0.1"
    assert parse_networks(["192.168.1.1", " 10.0.0.0/8 "])[1].prefixlen == 8


@pytest.mark.relay
def test_forwarding_headers_from_an_untrusted_peer_do_not_pass_allow_ips(gateway, fake_upstream):
    make_channel(fake_upstream.base_url)
    token = make_token(make_user("ivy"), allow_ips=f"{ALLOWED}\n198.51.100.0/24")
    propagated()
    for forged in ({"X-Forwarded-For": ALLOWED}, {"X-Real-IP": ALLOWED}, {"X-Forwarded-For": f"{ALLOWED}, 198.51.100.9"}):
        denied = chat(gateway, token.key, **forged)
        assert denied.status_code == 403 and "IP" in denied.json()["error"]["message"], forged
    local = make_token(make_user("ivo"), allow_ips="127.0.0.1")
    propagated()
    assert chat(gateway, local.key, **{"X-Forwarded-For": "192.0.2.1"}).status_code == 200


@pytest.mark.relay
def test_a_trusted_proxy_forwarding_headers_name_the_client(behind_proxy, fake_upstream):
    make_channel(fake_upstream.base_url)
    token = make_token(make_user("ivy"), allow_ips=f"{ALLOWED}\n198.51.100.0/24")
    propagated()
    assert chat(behind_proxy, token.key, **{"X-Forwarded-For": ALLOWED}).status_code == 200
    assert chat(behind_proxy, token.key, **{"X-Forwarded-For": "198.51.100.9"}).status_code == 200
    assert chat(behind_proxy, token.key, **{"X-Real-IP": ALLOWED}).status_code == 200
    # A chain of our own proxies in front: the right-most address that is not one of them is the client.
    assert chat(behind_proxy, token.key, **{"X-Forwarded-For": f"{ALLOWED}, 10.1.2.3"}).status_code == 200
    # The client prepended an allowed address itself; the proxy appended the real one.
    forged = chat(behind_proxy, token.key, **{"X-Forwarded-For": f"{ALLOWED}, 192.0.2.1"})
    assert forged.status_code == 403
    # Without forwarding headers the peer itself (127.0.0.1) is the client.
    assert chat(behind_proxy, token.key).status_code == 403


def test_realtime_refuses_a_token_whose_allow_ips_exclude_the_client(gateway, realtime_upstream):  # noqa: F811
    make_channel(realtime_upstream.base_url, key="rt-key", models=MODEL)
    user = make_user("rt-ip", quota=1_000_000)
    elsewhere = make_token(user, name="elsewhere", allow_ips=ALLOWED)
    here = make_token(user, name="here", allow_ips="127.0.0.0/8")
    propagated()
    event, code = asyncio.run(refused(ws_url(gateway), **auth_kwargs(elsewhere.key)))
    assert (event["type"], event["error"]["status"], code) == ("error", 403, 4403)
    forged = auth_kwargs(elsewhere.key, via_subprotocol=False)
    forged["additional_headers"]["X-Forwarded-For"] = ALLOWED
    event, code = asyncio.run(refused(ws_url(gateway), **forged))
    assert (event["error"]["status"], code) == (403, 4403)
    events = asyncio.run(session(ws_url(gateway), here.key, 1))
    assert [e["type"] for e in events] == ["session.created", "response.created", "response.done"]
    # billed once it closed; waiting for the row also keeps the table flush after this test clear of it
    assert session_log(user).token_id == here.pk


def test_api_throttle_keys_on_the_client_behind_a_trusted_proxy(throttled_behind_proxy):
    url = f"{throttled_behind_proxy.url}/api/status"
    first = [httpx.get(url, headers={"X-Forwarded-For": "192.0.2.10"}).status_code for _ in range(4)]
    assert first == [200, 200, 200, 429]
    # Another client behind the same proxy has its own budget, not the proxy's.
    assert httpx.get(url, headers={"X-Forwarded-For": "192.0.2.11"}).status_code == 200


def test_api_throttle_ignores_forwarding_headers_from_anyone_else(gateway):
    env_gw = start_gateway({"GLOBAL_API_RATE_LIMIT_ENABLE": "true", "GLOBAL_API_RATE_LIMIT": "3",
                            "GLOBAL_API_RATE_LIMIT_DURATION": "60",
                            "REDIS_KEY_PREFIX": f"newapi-test-ipx-{os.getpid()}-{time.time_ns()}"})
    try:
        url = f"{env_gw.url}/api/status"
        # A fresh X-Forwarded-For on every call does not buy a fresh budget.
        codes = [httpx.get(url, headers={"X-Forwarded-For": f"192.0.2.{i}"}).status_code for i in range(4)]
        assert codes == [200, 200, 200, 429]
    finally:
        env_gw.stop()
