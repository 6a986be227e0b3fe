"""Realtime websocket relay through a real Daphne gateway against a fake realtime upstream."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from billing.models import Log
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle
from tests.fakes.realtime_upstream import FakeRealtime

pytestmark = [live]
MODEL = "gpt-4o-realtime-preview"
# (10 text in + 20 text out × 4 + 5 audio out × 20 × 2) × model ratio 2.5 = 725
PER_RESPONSE = 725


@pytest.fixture(scope="session")
def realtime_upstream() -> FakeRealtime:
    return FakeRealtime().start()


async def session(url: str, key: str, responses: int, via_subprotocol: bool = True, drain: bool = False) -> list[dict]:
    kwargs = {"subprotocols": ["realtime", f"openai-insecure-api-key.sk-{key}", "openai-beta.realtime-v1"]} if via_subprotocol else {"additional_headers": {"Authorization": f"Bearer sk-{key}"}}
    events: list[dict] = []
    async with connect(f"{url}/v1/realtime?model={MODEL}", **kwargs) as ws:
        events.append(json.loads(await ws.recv()))
        for _ in range(responses):
            await ws.send(json.dumps({"type": "response.create"}))
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                events.append(event)
                if event["type"] in ("response.done", "error"):
                    break
        if drain:  # read what follows until the gateway closes the socket
            try:
                while True:
                    events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            except ConnectionClosed:
                pass
    return events


def test_realtime_relays_and_bills_each_response(gateway, realtime_upstream):
    channel = make_channel(realtime_upstream.base_url, key="rt-key", models=MODEL)
    user = make_user("rt", quota=1_000_000)
    token = make_token(user, unlimited_quota=False, remain_quota=100_000)
    propagated()
    events = asyncio.run(session(gateway.url.replace("http", "ws"), token.key, 2))
    assert [e["type"] for e in events] == ["session.created", "response.created", "response.done", "response.created", "response.done"]
    sent = realtime_upstream.connections[-1]
    assert sent["path"] == f"/v1/realtime?model={MODEL}"
    assert "openai-insecure-api-key.rt-key" in sent["headers"]["sec-websocket-protocol"]
    import time

    for _ in range(50):
        settle()
        if Log.objects.filter(user_id=user.pk).exists():
            break
        time.sleep(0.1)
    settle()
    user.refresh_from_db()
    token.refresh_from_db()
    channel.refresh_from_db()
    assert (user.quota, token.remain_quota) == (1_000_000 - 2 * PER_RESPONSE, 100_000 - 2 * PER_RESPONSE)
    log = Log.objects.get(user_id=user.pk)
    assert (log.quota, log.prompt_tokens, log.completion_tokens, log.is_stream) == (2 * PER_RESPONSE, 20, 50, True)
    assert json.loads(log.other)["ws"] is True
    assert channel.used_quota == 2 * PER_RESPONSE and user.used_quota == 2 * PER_RESPONSE


def test_realtime_closes_with_error_when_balance_runs_out(gateway, realtime_upstream):
    make_channel(realtime_upstream.base_url, key="rt-key", models=MODEL)
    user = make_user("poor", quota=1_000)
    token = make_token(user)
    propagated()
    events = asyncio.run(session(gateway.url.replace("http", "ws"), token.key, 2, via_subprotocol=False, drain=True))
    assert events[-1]["type"] == "error"
    assert [e["type"] for e in events].count("response.done") == 2  # the second was relayed, then refused
    settle()
    user.refresh_from_db()
    assert user.quota == 1_000 - PER_RESPONSE
