"""A flood of invented API keys neither grows a web worker's memory nor delays real requests,
and token keys never travel on the invalidation bus (its file transport is a log on disk)."""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from accounts.models import Token
from newapi_site import bus
from newapi_site import redis as r
from relay import state
from tests.conftest import live, make_channel, make_token, make_user, start_gateway

pytestmark = [live, pytest.mark.relay]

ALNUM = string.ascii_letters + string.digits
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def random_key(length: int) -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(length))


async def flood(url: str, keys: list[str], concurrency: int = 48) -> set[int]:
    statuses: set[int] = set()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        queue = iter(keys)

        async def worker() -> None:
            for key in queue:
                resp = await client.post(url, json=CHAT, headers={"Authorization": f"Bearer sk-{key}"})
                statuses.add(resp.status_code)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def flood_with_valid_requests(url: str, keys: list[str], valid_key: str) -> tuple[set[int], list[float]]:
    """The flood, and meanwhile a valid request every 50 ms (timed) until the flood ends."""
    task = asyncio.ensure_future(flood(url, keys))
    took: list[float] = []
    async with httpx.AsyncClient(timeout=60) as client:
        while not task.done():
            start = time.monotonic()
            resp = await client.post(url, json=CHAT, headers={"Authorization": f"Bearer sk-{valid_key}"})
            assert resp.status_code == 200, resp.text
            took.append(time.monotonic() - start)
            await asyncio.sleep(0.05)
    return await task, took


def test_invented_keys_neither_grow_the_worker_nor_delay_real_requests(fake_upstream):
    make_channel(fake_upstream.base_url)
    token = make_token(make_user("flooded"))
    gw = start_gateway()
    try:
        url = f"{gw.v1}/chat/completions"
        assert httpx.post(url, json=CHAT, headers={"Authorization": f"Bearer sk-{token.key}"}, timeout=30).status_code == 200
        # Warm the worker's allocator at the flood's concurrency first.
        assert asyncio.run(flood(url, [random_key(4096) for _ in range(300)])) == {401}
        assert asyncio.run(flood(url, [random_key(48) for _ in range(100)])) == {401}
        before = rss_kb(gw.proc.pid)
        keys = [random_key(4096) for _ in range(2000)] + [random_key(48) for _ in range(600)]
        statuses, took = asyncio.run(flood_with_valid_requests(url, keys, token.key))
        grown_mb = (rss_kb(gw.proc.pid) - before) / 1024
    finally:
        gw.stop()
    assert statuses == {401}
    assert took, "no valid request ran during the flood"
    assert grown_mb < 5, f"the worker grew by {grown_mb:.1f} MB"
    assert max(took) < 5, f"a valid request took {max(took):.2f} s during the flood"


def test_unknown_keys_are_remembered_bounded_and_only_as_digests():
    make_user("keyholder")
    keys = [random_key(48) for _ in range(state.NEGATIVE_CACHE_SIZE + 1000)]

    async def look_up_all() -> list:
        return await asyncio.gather(*(state.tokens.get(k) for k in keys))

    assert asyncio.run(look_up_all()) == [None] * len(keys)
    remembered = list(state.tokens._negative)
    assert 0 < len(remembered) <= state.NEGATIVE_CACHE_SIZE
    assert not set(remembered) & set(keys)
    assert all(len(d) == 64 for d in remembered)  # hex HMAC-SHA256
    # A key longer than any stored key, or with characters no key has, is not even remembered.
    asyncio.run(state.tokens.get("x" * 4096))
    asyncio.run(state.tokens.get("bad key!"))
    assert bus.key_digest("x" * 4096) not in state.tokens._negative


def test_token_keys_never_travel_on_the_bus():
    user = make_user("secretive")
    if r.redis_enabled():
        pubsub = r.sync_redis().pubsub()
        pubsub.subscribe(r.key("invalidate"))
    token = make_token(user)
    token.status = 2
    token.save()
    Token.objects.filter(pk=token.pk).first().delete()
    if r.redis_enabled():
        seen = []
        deadline = time.time() + 2
        while time.time() < deadline:
            message = pubsub.get_message(timeout=0.1)
            if message and message["type"] == "message":
                seen.append(message["data"].decode())
        pubsub.close()
        text = "\n".join(seen)
    else:
        text = (Path(settings.DATA_DIR) / "invalidate.log").read_text()
    assert bus.token_topic(token.key) in text
    assert token.key not in text
