"""The seed's environment switches, each changed on a real gateway and seen to take effect:
GEMINI_MODEL_MAP, GEMINI_VISION_MAX_IMAGE_NUM, CRYPTO_SECRET, SYNC_FREQUENCY, MEMORY_CACHE_ENABLED."""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx
import pytest
from django.conf import settings

from accounts.models import Token
from newapi_site import bus
from newapi_site import redis as r
from tests.conftest import live, make_channel, make_token, make_user, propagated, start_gateway
from tests.fakes.gemini_upstream import FakeGemini

pytestmark = [live, pytest.mark.relay]
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def gemini() -> FakeGemini:
    return FakeGemini().start()


@pytest.fixture
def started():
    gateways = []

    def start(env: dict[str, str]):
        gw = start_gateway(env)
        gateways.append(gw)
        return gw

    yield start
    for gw in gateways:
        gw.stop()


def _chat(gw, token: Token, body: dict) -> httpx.Response:
    return httpx.post(
        f"{gw.v1}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer sk-{token.key}"},
        timeout=30,
    )


def _images(n: int) -> dict:
    parts = [{"type": "text", "text": "look"}] + [{"type": "image_url", "image_url": {"url": PNG}}] * n
    return {"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": parts}]}


def test_gemini_model_map_and_image_cap(started, gemini, gateway):
    make_channel(
        gemini.base_url, key="seed-gemini", type=24, models="gemini-1.5-flash,gemini-2.0-flash,gemini-1.0-pro"
    )
    user = make_user("seedg", quota=1_000_000)
    token = make_token(user)
    gw = started(
        {
            "GEMINI_MODEL_MAP": "gemini-1.5-flash:v1alpha,gemini-1.0-pro:v9,broken",
            "GEMINI_VISION_MAX_IMAGE_NUM": "2",
        }
    )
    assert _chat(gw, token, {**BODY, "model": "gemini-1.5-flash"}).status_code == 200
    assert gemini.last("seed-gemini").path == "/v1alpha/models/gemini-1.5-flash:generateContent"
    assert _chat(gw, token, {**BODY, "model": "gemini-2.0-flash"}).status_code == 200
    assert gemini.last("seed-gemini").path == "/v1beta/models/gemini-2.0-flash:generateContent"
    # the option's own entry for a model wins over the environment
    assert _chat(gw, token, {**BODY, "model": "gemini-1.0-pro"}).status_code == 200
    assert gemini.last("seed-gemini").path == "/v1/models/gemini-1.0-pro:generateContent"
    # without the switch a model the option does not name takes the option's default
    assert _chat(gateway, token, {**BODY, "model": "gemini-1.5-flash"}).status_code == 200
    assert gemini.last("seed-gemini").path == "/v1beta/models/gemini-1.5-flash:generateContent"

    assert _chat(gw, token, _images(3)).status_code == 200  # the third image is left out
    assert len([p for p in gemini.last("seed-gemini").body["contents"][0]["parts"] if "inlineData" in p]) == 2
    assert _chat(gw, token, _images(2)).status_code == 200
    assert len([p for p in gemini.last("seed-gemini").body["contents"][0]["parts"] if "inlineData" in p]) == 2
    assert _chat(gateway, token, _images(3)).status_code == 200  # the default cap is 16
    assert len([p for p in gemini.last("seed-gemini").body["contents"][0]["parts"] if "inlineData" in p]) == 3


def test_crypto_secret_keys_the_token_digests(started, fake_upstream, gateway, settings):
    make_channel(fake_upstream.base_url, key="seed-crypto")
    token = make_token(make_user("seedc"))
    other = started({"CRYPTO_SECRET": "not-the-test-session-secret"})
    assert _chat(gateway, token, BODY).status_code == 200
    assert _chat(other, token, BODY).status_code == 200
    token.status = 2
    token.save()  # announced on the bus under the digest of this process's secret
    propagated()
    assert _chat(gateway, token, BODY).status_code == 401  # same secret: the change is seen at once
    assert _chat(other, token, BODY).status_code == 200  # another secret: its digest names nothing it knows
    if settings.REDIS_CONN_STRING:
        names = [k.decode() for k in r.sync_redis().scan_iter(match=r.key("*"), count=1000)]
        assert names and not [n for n in names if token.key in n]  # no raw key is a Redis key
    settings.CRYPTO_SECRET = "first-secret"
    first = bus.key_digest("abc")
    assert first == hmac.new(b"first-secret", b"abc", hashlib.sha256).hexdigest()
    settings.CRYPTO_SECRET = "second-secret"
    assert bus.key_digest("abc") != first


def test_sync_frequency_bounds_a_missed_change(started, fake_upstream, gateway):
    make_channel(fake_upstream.base_url, key="seed-sync")
    token = make_token(make_user("seeds"))
    fast = started({"SYNC_FREQUENCY": "1"})
    assert _chat(fast, token, BODY).status_code == 200
    assert _chat(gateway, token, BODY).status_code == 200
    Token.objects.filter(pk=token.pk).update(status=2)  # behind the gateway's back: no bus message
    time.sleep(1.5)
    assert _chat(fast, token, BODY).status_code == 401  # reloaded after SYNC_FREQUENCY
    assert _chat(gateway, token, BODY).status_code == 200  # the default 60 s snapshot still serves


@pytest.mark.skipif(
    bool(settings.REDIS_CONN_STRING), reason="Redis forces the memory cache on, as in New API"
)
def test_memory_cache_off_reads_every_request(started, fake_upstream, gateway):
    make_channel(fake_upstream.base_url, key="seed-memory")
    token = make_token(make_user("seedm"))
    uncached = started({"MEMORY_CACHE_ENABLED": "false"})
    assert _chat(uncached, token, BODY).status_code == 200
    assert _chat(gateway, token, BODY).status_code == 200
    Token.objects.filter(pk=token.pk).update(status=2)
    assert _chat(uncached, token, BODY).status_code == 401
    assert _chat(gateway, token, BODY).status_code == 200
