"""Image URLs in a chat are fetched only after the quota is held, and within per-request limits:
how many, how many at once, and an overall deadline."""

from __future__ import annotations

import asyncio
import struct
import threading
import time
import zlib

import httpx
import pytest
from aiohttp import web

from tests.conftest import live, make_channel, make_token, make_user, settle, start_gateway

pytestmark = [live, pytest.mark.relay]

DEADLINE = 2  # MEDIA_FETCH_DEADLINE_SECONDS of the gateway below


def png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


class CountingImages:
    """/fast/<n>.png answers after 50 ms, /slow/<n>.png after 30 s; counts requests and the most
    in flight at once."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.hits.append(request.path)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                await asyncio.sleep(30 if request.path.startswith("/slow/") else 0.05)
                return web.Response(body=png(512, 512) + b"\0" * 4096, content_type="image/png")
            finally:
                self.in_flight -= 1

        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/{kind}/{name}", handle)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        ready.set()
        loop.run_forever()

    def reset(self) -> None:
        self.hits.clear()
        self.most_in_flight = 0


@pytest.fixture(scope="module")
def images() -> CountingImages:
    return CountingImages()


@pytest.fixture(scope="module")
def image_gateway(django_db_setup, django_db_blocker):
    gw = start_gateway({"MEDIA_FETCH_ALLOW_PRIVATE": "true", "MEDIA_FETCH_DEADLINE_SECONDS": str(DEADLINE)})
    yield gw
    gw.stop()


def chat_with_images(gw, key: str, urls: list[str]) -> httpx.Response:
    content = [{"type": "text", "text": "describe"}] + [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    body = {"model": "gpt-4o", "max_tokens": 50, "messages": [{"role": "user", "content": content}]}
    return httpx.post(f"{gw.v1}/chat/completions", headers={"Authorization": f"Bearer sk-{key}"}, json=body, timeout=60)


def test_a_key_that_cannot_pay_fetches_nothing(image_gateway, fake_upstream, images):
    make_channel(fake_upstream.base_url, key="fanout-broke", models="gpt-4o")
    images.reset()
    broke = make_user("fan-broke", quota=0)
    r = chat_with_images(image_gateway, make_token(broke).key, [f"{images.url}/fast/{i}.png" for i in range(20)])
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_user_quota"
    assert images.hits == []
    assert fake_upstream.requests_for("fanout-broke") == []


def test_fifty_images_fetch_at_most_the_cap_a_few_at_a_time(image_gateway, fake_upstream, images):
    make_channel(fake_upstream.base_url, key="fanout-many", models="gpt-4o")
    images.reset()
    user = make_user("fan-many", quota=10_000_000)
    r = chat_with_images(image_gateway, make_token(user).key, [f"{images.url}/fast/{i}.png" for i in range(50)])
    assert r.status_code == 200, r.text
    assert len(images.hits) == 16  # MEDIA_FETCH_MAX_IMAGES; the other 34 count at the flat estimate
    assert images.most_in_flight <= 4  # MEDIA_FETCH_CONCURRENCY


def test_a_slow_image_server_does_not_stall_the_request(image_gateway, fake_upstream, images):
    make_channel(fake_upstream.base_url, key="fanout-slow", models="gpt-4o")
    images.reset()
    user = make_user("fan-slow", quota=10_000_000)
    started = time.monotonic()
    r = chat_with_images(image_gateway, make_token(user).key, [f"{images.url}/slow/{i}.png" for i in range(8)])
    elapsed = time.monotonic() - started
    assert r.status_code == 400 and r.json()["error"]["code"] == "count_token_messages_failed"
    assert elapsed < DEADLINE + 2, elapsed
    assert fake_upstream.requests_for("fanout-slow") == []
    settle()
    user.refresh_from_db()
    assert user.quota == 10_000_000  # the hold taken before the fetch went back
