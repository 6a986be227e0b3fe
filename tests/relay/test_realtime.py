"""Realtime websocket relay through a real Daphne gateway against a fake realtime upstream."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from billing.models import LOG_CONSUME, Log
from newapi_site.options import update_option
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle
from tests.fakes.realtime_upstream import FakeRealtime

pytestmark = [live]
MODEL = "gpt-4o-realtime-preview"
# (10 text in + 20 text out × 4 + 5 audio out × 20 × 2) × model ratio 2.5 = 725
PER_RESPONSE = 725
ONE_SECOND_PCM16 = base64.b64encode(bytes(48_000)).decode()  # 24 kHz × 2 bytes: 27 input audio tokens


@pytest.fixture(scope="session")
def realtime_upstream() -> FakeRealtime:
    return FakeRealtime().start()


def ws_url(gateway, query: str = f"model={MODEL}") -> str:
    return gateway.url.replace("http", "ws") + "/v1/realtime?" + query


def auth_kwargs(key: str, via_subprotocol: bool = True) -> dict:
    if via_subprotocol:
        return {"subprotocols": ["realtime", f"openai-insecure-api-key.sk-{key}", "openai-beta.realtime-v1"]}
    return {"additional_headers": {"Authorization": f"Bearer sk-{key}"}}


async def respond(ws, events: list[dict]) -> None:
    """Ask for one response and read until it is done (or an error / the close)."""
    await ws.send(json.dumps({"type": "response.create"}))
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 10))
        events.append(event)
        if event["type"] in ("response.done", "error"):
            return


async def drain(ws, events: list[dict]) -> None:
    try:
        while True:
            events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    except ConnectionClosed:
        pass


async def session(url: str, key: str, responses: int, via_subprotocol: bool = True, drain_after: bool = False) -> list[dict]:
    events: list[dict] = []
    async with connect(url, **auth_kwargs(key, via_subprotocol)) as ws:
        events.append(json.loads(await ws.recv()))
        for _ in range(responses):
            await respond(ws, events)
        if drain_after:  # read what follows until the gateway closes the socket
            await drain(ws, events)
    return events


def session_log(user) -> Log:
    """The session's consume log, once the gateway has settled it (the socket closes first)."""
    for _ in range(100):
        settle()
        found = Log.objects.filter(user_id=user.pk, type=LOG_CONSUME).first()
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError("no consume log written")


def persona(name: str, quota: int = 1_000_000, token_quota: int = 100_000):
    user = make_user(name, quota=quota)
    token = make_token(user, unlimited_quota=False, remain_quota=token_quota)
    propagated()
    return user, token


def assert_charged(user, token, quota: int, start: int = 1_000_000, token_start: int = 100_000) -> Log:
    log = session_log(user)
    settle()
    user.refresh_from_db()
    token.refresh_from_db()
    assert log.quota == quota
    assert (user.quota, token.remain_quota, user.used_quota) == (start - quota, token_start - quota, quota)
    return log


def test_realtime_relays_and_bills_each_response(gateway, realtime_upstream):
    channel = make_channel(realtime_upstream.base_url, key="rt-key", models=MODEL)
    user, token = persona("rt")
    events = asyncio.run(session(ws_url(gateway), token.key, 2))
    assert [e["type"] for e in events] == ["session.created", "response.created", "response.done", "response.created", "response.done"]
    sent = realtime_upstream.connections[-1]
    assert sent["path"] == f"/v1/realtime?model={MODEL}"
    assert "openai-insecure-api-key.rt-key" in sent["headers"]["sec-websocket-protocol"]
    log = assert_charged(user, token, 2 * PER_RESPONSE)
    assert (log.prompt_tokens, log.completion_tokens, log.is_stream, log.channel_id) == (20, 50, True, channel.pk)
    other = json.loads(log.other)
    assert other["ws"] is True and (other["text_input"], other["text_output"], other["audio_output"]) == (20, 40, 10)
    channel.refresh_from_db()
    assert channel.used_quota == 2 * PER_RESPONSE
    assert Log.objects.filter(user_id=user.pk).count() == 1


def test_realtime_closes_with_error_when_balance_runs_out(gateway, realtime_upstream):
    make_channel(realtime_upstream.base_url, key="rt-key", models=MODEL)
    # 2000: the connect estimate (500 × 2.5) and one response fit, the second response does not.
    user, token = persona("poor", quota=2_000)
    events = asyncio.run(session(ws_url(gateway), token.key, 2, via_subprotocol=False, drain_after=True))
    assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "insufficient_user_quota"
    assert [e["type"] for e in events].count("response.done") == 2  # the second was relayed, then refused
    # What arrived is billed, even the response that overdrew the balance.
    assert_charged(user, token, 2 * PER_RESPONSE, start=2_000)


def test_realtime_bills_local_estimates_when_usage_is_missing(gateway, realtime_upstream):
    make_channel(realtime_upstream.base_url, key="rt-nousage", models=MODEL)
    user, token = persona("est")

    async def run() -> list[dict]:
        events: list[dict] = []
        async with connect(ws_url(gateway), **auth_kwargs(token.key)) as ws:
            events.append(json.loads(await ws.recv()))
            await ws.send(json.dumps({"type": "session.update", "session": {"instructions": "Be brief."}}))
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": ONE_SECOND_PCM16}))
            item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi there"}]}
            await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
            await respond(ws, events)
        return events

    events = asyncio.run(run())
    assert [e["type"] for e in events][-1] == "response.done"
    # input: 3 + 2 text tokens, 27 audio (1 s); output: 1 text ("hello"), 6 audio (0.5 s)
    # (5 + 1 × 4 + 27 × 20 + 6 × 20 × 2) × 2.5 = 1972.5 → 1973
    log = assert_charged(user, token, 1973)
    assert (log.prompt_tokens, log.completion_tokens) == (32, 7)
    other = json.loads(log.other)
    assert (other["text_input"], other["audio_input"], other["text_output"], other["audio_output"]) == (5, 27, 1, 6)


def test_upstream_dying_mid_session_bills_what_arrived(gateway, realtime_upstream):
    make_channel(realtime_upstream.base_url, key="rt-die", models=MODEL)
    user, token = persona("cut")

    async def run() -> list[dict]:
        events: list[dict] = []
        async with connect(ws_url(gateway), **auth_kwargs(token.key)) as ws:
            events.append(json.loads(await ws.recv()))
            await respond(ws, events)
            await ws.send(json.dumps({"type": "response.create"}))
            await drain(ws, events)  # the gateway closes the client when the upstream is gone
        return events

    events = asyncio.run(run())
    assert [e["type"] for e in events][-2:] == ["response.created", "response.audio_transcript.delta"]
    # one reported response, plus the estimated "hello" (1 text token × 4 × 2.5)
    assert_charged(user, token, PER_RESPONSE + 10)


def test_client_dropping_bills_what_arrived(gateway, realtime_upstream):
    make_channel(realtime_upstream.base_url, key="rt-key", models=MODEL)
    user, token = persona("gone")

    async def run() -> None:
        ws = await connect(ws_url(gateway), **auth_kwargs(token.key))
        await ws.recv()
        await respond(ws, [])
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": ONE_SECOND_PCM16}))
        for _ in range(50):  # the append reached the upstream, so it is in the gateway's count
            if realtime_upstream.received and realtime_upstream.received[-1]["type"] == "input_audio_buffer.append":
                break
            await asyncio.sleep(0.05)
        ws.transport.abort()  # no close frame: the client just vanishes

    asyncio.run(run())
    # one reported response, plus 1 s of appended audio nobody answered: 27 × 20 × 2.5 = 1350
    assert_charged(user, token, PER_RESPONSE + 1350)


async def refused(url: str, **kwargs) -> tuple[dict, int]:
    async with connect(url, **kwargs) as ws:
        event = json.loads(await asyncio.wait_for(ws.recv(), 10))
        try:
            await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed:
            pass
        return event, ws.close_code


def test_connect_refusals_are_error_events_then_close(gateway, realtime_upstream):
    make_channel(realtime_upstream.base_url, key="rt-key", models=MODEL)
    user, token = persona("refused")
    event, code = asyncio.run(refused(ws_url(gateway), **auth_kwargs("not-a-key")))
    assert event["type"] == "error" and event["error"]["status"] == 401 and code == 4401
    event, code = asyncio.run(refused(ws_url(gateway), additional_headers={}))
    assert event["error"]["status"] == 401 and code == 4401
    event, code = asyncio.run(refused(ws_url(gateway, "model=gpt-4o-mini-realtime-preview"), **auth_kwargs(token.key)))
    assert (event["error"]["status"], event["error"]["code"], code) == (503, "model_not_available", 4503)
    broke, broke_token = persona("broke", quota=0)
    event, code = asyncio.run(refused(ws_url(gateway), **auth_kwargs(broke_token.key)))
    assert (event["error"]["status"], event["error"]["code"], code) == (403, "insufficient_user_quota", 4403)
    limited = make_token(user, name="limited", model_limits_enabled=True, model_limits="gpt-4o-mini")
    propagated()
    event, code = asyncio.run(refused(ws_url(gateway), **auth_kwargs(limited.key)))
    assert event["type"] == "error" and code == 4403
    settle()
    user.refresh_from_db()
    assert user.quota == 1_000_000 and not Log.objects.filter(user_id=user.pk).exists()


def test_azure_realtime_path_and_api_key(gateway, realtime_upstream):
    make_channel(
        realtime_upstream.base_url, key="az-key", type=3, models=MODEL,
        model_mapping=json.dumps({MODEL: "gpt-4o.realtime"}),
    )
    user, token = persona("azure")
    asyncio.run(session(ws_url(gateway), token.key, 1, via_subprotocol=False))
    sent = realtime_upstream.connections[-1]
    assert sent["path"] == "/openai/realtime?deployment=gpt-4orealtime&api-version=2024-12-01-preview"
    assert sent["headers"]["api-key"] == "az-key" and "authorization" not in sent["headers"]
    asyncio.run(session(ws_url(gateway, f"model={MODEL}&api-version=2025-04-01-preview"), token.key, 1))
    sent = realtime_upstream.connections[-1]
    assert sent["path"] == "/openai/realtime?deployment=gpt-4orealtime&api-version=2025-04-01-preview"
    assert "openai-insecure-api-key" not in sent["headers"].get("sec-websocket-protocol", "")
    for _ in range(100):  # both sessions settled before the test's data is flushed
        settle()
        if Log.objects.filter(user_id=user.pk, type=LOG_CONSUME).count() == 2:
            break
        time.sleep(0.1)
    settle()
    user.refresh_from_db()
    assert user.quota == 1_000_000 - 2 * PER_RESPONSE


def test_dial_failure_retries_on_another_channel(gateway, realtime_upstream):
    make_channel(realtime_upstream.base_url, key="rt-refuse", models=MODEL, priority=10)
    good = make_channel(realtime_upstream.base_url, key="rt-key", models=MODEL)
    user, token = persona("retry")
    update_option("RetryTimes", "0")
    propagated()
    event, code = asyncio.run(refused(ws_url(gateway), **auth_kwargs(token.key)))
    assert (event["error"]["code"], code) == ("do_request_failed", 4500)
    update_option("RetryTimes", "1")
    propagated()
    try:
        events = asyncio.run(session(ws_url(gateway), token.key, 1))
        assert events[-1]["type"] == "response.done"
        assert session_log(user).channel_id == good.pk
    finally:
        update_option("RetryTimes", "0")
        propagated()
    settle()
    user.refresh_from_db()
    assert user.quota == 1_000_000 - PER_RESPONSE  # the refused dial's connect estimate came back


def test_session_tokens_count_against_the_channel_tpm(gateway, realtime_upstream):
    # each response reports 35 tokens: one session of two puts the first channel past 60 a minute
    first = make_channel(
        realtime_upstream.base_url, key="rt-key", models=MODEL, priority=10, setting=json.dumps({"tpm_limit": 60})
    )
    after = make_channel(realtime_upstream.base_url, key="rt-key", models=MODEL, priority=0)
    user, token = persona("rt-tpm-a")
    asyncio.run(session(ws_url(gateway), token.key, 2))
    assert session_log(user).channel_id == first.pk
    user2, token2 = persona("rt-tpm-b")
    asyncio.run(session(ws_url(gateway), token2.key, 1))
    assert session_log(user2).channel_id == after.pk
