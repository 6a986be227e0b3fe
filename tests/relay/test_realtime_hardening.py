"""The realtime relay under the model request rate limit, against a hung upstream, and without
leaking internal addresses in its errors."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import pytest
from aiohttp import web
from websockets.asyncio.client import connect

from billing.models import LOG_CONSUME, Log
from newapi_site.options import update_option
from tests.conftest import live, make_channel, propagated, settle
from tests.fakes.realtime_upstream import FakeRealtime, channel_key
from tests.fakes.server import ThreadedServer
from tests.relay.test_realtime import (
    MODEL,
    PER_RESPONSE,
    auth_kwargs,
    persona,
    refused,
    session,
    session_log,
    ws_url,
)

pytestmark = [live]


class HangingRealtime(FakeRealtime):
    """Keys containing `hang`: the first response sends a transcript delta, then the upstream stops
    reading its socket for good (it never answers a close)."""

    async def _handle(self, ws) -> None:
        if "hang" not in channel_key(ws.request.headers):
            return await super()._handle(ws)
        self.connections.append({"path": ws.request.path, "headers": dict(ws.request.headers)})
        await ws.send(json.dumps({"type": "session.created", "session": {"input_audio_format": "pcm16"}}))
        async for message in ws:
            if json.loads(message).get("type") == "response.create":
                await ws.send(json.dumps({"type": "response.created", "response": {"id": "resp_1"}}))
                await ws.send(json.dumps({"type": "response.audio_transcript.delta", "delta": "hello"}))
                ws.transport.pause_reading()
                await asyncio.sleep(3600)


@pytest.fixture(scope="module")
def hanging_upstream() -> HangingRealtime:
    return HangingRealtime().start()


@pytest.fixture
def total_limit_of_one():
    update_option("ModelRequestRateLimitCount", "1")
    update_option("ModelRequestRateLimitEnabled", "true")
    propagated()
    yield
    update_option("ModelRequestRateLimitEnabled", "false")
    update_option("ModelRequestRateLimitCount", "0")
    propagated()


def test_realtime_sessions_count_against_the_model_request_rate_limit(gateway, hanging_upstream, total_limit_of_one):
    make_channel(hanging_upstream.base_url, key="rt-limited", models=MODEL)
    user, token = persona("rt-limited")
    assert asyncio.run(session(ws_url(gateway), token.key, 1))[-1]["type"] == "response.done"
    event, code = asyncio.run(refused(ws_url(gateway), **auth_kwargs(token.key)))
    assert (event["error"]["status"], event["error"]["code"], code) == (429, "model_request_rate_limited", 4429)
    assert session_log(user).quota == PER_RESPONSE  # the first session alone was billed


def test_a_session_with_a_hung_upstream_is_billed_as_soon_as_the_client_leaves(gateway, hanging_upstream):
    make_channel(hanging_upstream.base_url, key="rt-hang", models=MODEL)
    user, token = persona("rt-hang")

    async def run() -> float:
        async with connect(ws_url(gateway), **auth_kwargs(token.key)) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "response.create"}))
            while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "response.audio_transcript.delta":
                pass
        return time.monotonic()

    left = asyncio.run(run())
    while not Log.objects.filter(user_id=user.pk, type=LOG_CONSUME).exists():
        assert time.monotonic() - left < 4, "the session was not billed while the upstream hung"
        settle()
        time.sleep(0.05)
    assert session_log(user).quota == 10  # "hello": 1 text token × completion ratio 4 × 2.5


@dataclass
class RedirectingUpstream(ThreadedServer):
    """Answers every handshake with a redirect to an internal address (not a websocket URI)."""

    host: str = "127.0.0.1"
    port: int = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": "http://10.11.12.13:8080/internal"})


def test_dial_errors_do_not_show_internal_addresses(gateway):
    make_channel(RedirectingUpstream().start().base_url, key="rt-redirect", models=MODEL)
    user, token = persona("rt-redirect")
    event, code = asyncio.run(refused(ws_url(gateway), **auth_kwargs(token.key)))
    assert (event["error"]["code"], code) == ("do_request_failed", 4500)
    assert "10.11.12.13" not in event["error"]["message"]
    settle()
    user.refresh_from_db()
    assert user.quota == 1_000_000
