"""Model request rate limit (per user, sliding window): success cap, total cap (failures count),
429 OpenAI body, and exactness across two gateway processes sharing Redis."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from django.conf import settings

from tests.conftest import live, make_channel, make_token, make_user, start_gateway

pytestmark = [live, pytest.mark.relay]
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_success_cap(gateway, fake_upstream, limits):
    make_channel(fake_upstream.base_url, key="rl-ok")
    token = make_token(make_user("rl1"))
    other = make_token(make_user("rl2"))
    limits(0, 2)
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    for _ in range(2):
        client.chat.completions.create(**BODY)
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(**BODY)
    assert "1分钟内最多请求2次" in exc.value.body["message"] and exc.value.body["code"] == "model_request_rate_limited"
    # per user: someone else is not affected
    openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{other.key}", max_retries=0).chat.completions.create(**BODY)
    # /v1/models is not limited
    assert httpx.get(f"{gateway.v1}/models", headers={"Authorization": f"Bearer sk-{token.key}"}).status_code == 200


def test_total_cap_counts_failures(gateway, fake_upstream, limits):
    make_channel(fake_upstream.base_url, key="status-500")
    token = make_token(make_user("rl3"))
    limits(2, 1000)
    headers = {"Authorization": f"Bearer sk-{token.key}"}
    codes = [httpx.post(f"{gateway.v1}/chat/completions", json=BODY, headers=headers).status_code for _ in range(3)]
    assert codes == [500, 500, 429]
    r = httpx.post(f"{gateway.v1}/chat/completions", json=BODY, headers=headers)
    assert r.status_code == 429 and "包括失败次数" in r.json()["error"]["message"]


@pytest.mark.skipif(not settings.REDIS_CONN_STRING, reason="exact across processes needs Redis")
def test_exact_across_two_gateways(gateway, fake_upstream, limits):
    make_channel(fake_upstream.base_url, key="rl-two")
    token = make_token(make_user("rl4"))
    second = start_gateway()
    try:
        limits(5, 1000)
        headers = {"Authorization": f"Bearer sk-{token.key}"}

        async def run() -> list[int]:
            async with httpx.AsyncClient(timeout=30) as client:
                urls = [gateway.v1, second.v1] * 8
                rs = await asyncio.gather(*(client.post(f"{u}/chat/completions", json=BODY, headers=headers) for u in urls))
                return [r.status_code for r in rs]

        codes = asyncio.run(run())
        assert codes.count(200) == 5 and codes.count(429) == 11
    finally:
        second.stop()
