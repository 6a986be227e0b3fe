"""The playground's stream, like /v1's, closes the upstream and keeps nothing held when the
client leaves early: what reached the gateway is billed, the rest of the hold goes back."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from billing.models import Log
from tests.conftest import live, make_channel, make_user, settle
from tests.fakes.server import ThreadedServer

pytestmark = [live, pytest.mark.relay]

MODEL = "gpt-4o-mini"
HOLD = int(500 * 0.075)  # PreConsumedQuota × ratio: what a stream without max_tokens holds
CHUNKS = 200


@dataclass
class Trickle(ThreadedServer):
    """Streams CHUNKS one-token chunks 20 ms apart; `finished` counts streams read to the end."""

    host: str = "127.0.0.1"
    port: int = 0
    finished: list[int] = field(default_factory=list)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "c", "object": "chat.completion.chunk", "created": int(time.time()), "model": body["model"]}
        try:
            for _ in range(CHUNKS):
                chunk = {**base, "choices": [{"index": 0, "delta": {"content": " tok"}, "finish_reason": None}]}
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                await asyncio.sleep(0.02)
            await response.write(b"data: [DONE]\n\n")
            self.finished.append(1)
        except (ConnectionResetError, RuntimeError):
            pass
        return response


def login(gateway, user) -> httpx.Client:
    client = httpx.Client(base_url=gateway.url, timeout=30)
    assert client.post("/api/user/login", json={"username": user.username, "password": f"{user.username}-password"}).json()["success"]
    client.headers["New-Api-User"] = str(user.pk)
    return client


def test_leaving_a_playground_stream_early_keeps_nothing_held(gateway):
    upstream = Trickle().start()
    make_channel(upstream.base_url, key="pg-trickle", models=MODEL)
    start = HOLD + 10  # room for one hold at a time: a hold left behind would refuse the next stream
    user = make_user("pg-leaver", quota=start)
    client = login(gateway, user)
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(3):
        with client.stream("POST", "/pg/chat/completions", json=body) as response:
            assert response.status_code == 200, response.read()
            next(response.iter_lines())  # the first chunk, then leave
        time.sleep(0.5)
    assert upstream.finished == []  # each upstream stream was closed when its client left
    settle()
    logs = list(Log.objects.filter(user_id=user.pk).values_list("completion_tokens", "quota"))
    assert len(logs) == 3 and all(tokens < CHUNKS / 2 for tokens, _ in logs)
    user.refresh_from_db()
    assert user.quota == start - sum(q for _, q in logs)


@pytest.mark.django_db(transaction=True)
def test_leaving_between_the_headers_and_the_body_returns_the_hold(gateway):
    """Django's own ASGI handler, in process, with a client that disconnects while the response
    headers are being sent: the request task is cancelled before the body is iterated."""
    import gc
    from concurrent.futures import ThreadPoolExecutor

    from django.conf import settings
    from django.db import connections

    from billing import ledger
    from newapi_site import redis as r
    from newapi_site.asgi import django_app

    if not settings.REDIS_CONN_STRING:
        pytest.skip("reads the held balance from Redis")
    upstream = Trickle().start()
    make_channel(upstream.base_url, key="pg-headers", models=MODEL)
    start = HOLD + 10
    user = make_user("pg-headers", quota=start)
    cookies = login(gateway, user).cookies
    body = json.dumps({"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/pg/chat/completions", "raw_path": b"/pg/chat/completions", "query_string": b"", "root_path": "",
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", gateway.port),
        "headers": [(b"content-type", b"application/json"), (b"new-api-user", str(user.pk).encode()),
                    (b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode())],
    }

    async def run() -> list[dict]:
        gone = asyncio.Event()
        sent: list[dict] = []
        requests = iter([{"type": "http.request", "body": body, "more_body": False}])

        async def receive() -> dict:
            message = next(requests, None)
            if message is not None:
                return message
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)
            if message["type"] == "http.response.start":
                gone.set()  # the client leaves as the headers go out
                await asyncio.sleep(1)

        await django_app(scope, receive, send)
        await asyncio.sleep(0.5)  # what the handler left to run in the background
        return sent

    sent = asyncio.run(run())
    # The handler's database work ran on an asgiref worker thread: close its connection there, so
    # the test database can be dropped at the end of the session.
    for executor in [o for o in gc.get_objects() if isinstance(o, ThreadPoolExecutor)]:
        try:
            executor.submit(connections.close_all).result(5)
        except RuntimeError:
            pass  # already shut down
    assert [m["type"] for m in sent] == ["http.response.start"] and sent[0]["status"] == 200
    assert int(r.sync_redis().get(ledger.user_key(user.pk))) == start  # nothing left held
    settle()
    assert not Log.objects.filter(user_id=user.pk).exists()
