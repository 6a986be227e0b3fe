"""Model request rate limits exact on every set-up: across two gateway processes (Redis, or the
embedded ledger's owner without it), and under concurrency (the success cap counts requests in
flight; a failed request gives its slot back)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import live, make_channel, make_token, make_user, start_gateway

pytestmark = [live, pytest.mark.relay]
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def _fire(urls: list[str], key: str, body: dict) -> list[int]:
    headers = {"Authorization": f"Bearer sk-{key}"}
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(url: str) -> int:
            r = await client.post(f"{url}/chat/completions", json=body, headers=headers)
            await r.aread()
            return r.status_code

        return list(await asyncio.gather(*(one(u) for u in urls)))


def test_total_cap_exact_across_two_gateways(gateway, fake_upstream, limits):
    make_channel(fake_upstream.base_url, key="exact-two")
    token = make_token(make_user("exact2"))
    second = start_gateway()
    try:
        limits(5, 1000)
        codes = asyncio.run(_fire([gateway.v1, second.v1] * 8, token.key, BODY))
        assert codes.count(200) == 5 and codes.count(429) == 11
    finally:
        second.stop()


def test_success_cap_exact_under_concurrency_across_two_gateways(gateway, fake_upstream, limits):
    make_channel(fake_upstream.base_url, key="slow")  # a stream of 40 slow chunks: all are in flight together
    token = make_token(make_user("exact3"))
    second = start_gateway()
    try:
        limits(0, 3)
        body = {**BODY, "stream": True}
        codes = asyncio.run(_fire([gateway.v1, second.v1] * 6, token.key, body))
        assert codes.count(200) == 3 and codes.count(429) == 9, codes
    finally:
        second.stop()


def test_failed_requests_give_their_success_slot_back(gateway, fake_upstream, limits):
    make_channel(fake_upstream.base_url, key="status-500")
    token = make_token(make_user("exact4"))
    limits(0, 2)
    codes = [asyncio.run(_fire([gateway.v1], token.key, BODY))[0] for _ in range(4)]
    assert codes == [500] * 4  # one after another: a failure's slot is free again when it ends
