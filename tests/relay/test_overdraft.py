"""A user cannot run far below zero with long streams: a stream's hold grows with its output,
checked against the balance, and the stream is cut (and billed for what it delivered) once the
balance cannot pay; requests without a hold (the trusted rule) are capped per user."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from billing.models import Log
from newapi_site.option_defaults import DEFAULT_OPTIONS
from newapi_site.options import update_option
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle
from tests.fakes.server import ThreadedServer

pytestmark = [live, pytest.mark.relay]

MODEL = "gpt-4"  # model ratio 15, completion ratio 2: 30 quota a completion token
CHUNKS = 1000
WORDS = " word word word word"  # 4 tokens a chunk: a whole stream is 4 000 tokens = 120 000 quota
ESTIMATE = 500 * 15  # PreConsumedQuota × ratio: what a request without max_tokens holds
# What one stream may cost beyond what it held when it is cut: the chunk that passed the hold,
# plus the gap between the running estimate and the exact count of the prompt and the text.
SLACK = 1_000


@dataclass
class LongStreams(ThreadedServer):
    """A streamed chat gets CHUNKS chunks, 2 ms apart, usage at the end; a plain one a short
    answer, after 2 s when the last message says "slow"."""

    host: str = "127.0.0.1"
    port: int = 0
    finished: list[int] = field(default_factory=list)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        if not body.get("stream"):
            if body["messages"][-1]["content"] == "slow":
                await asyncio.sleep(2)
            return web.json_response({
                "id": "chatcmpl-short", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
            })
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "chatcmpl-long", "object": "chat.completion.chunk", "created": int(time.time()), "model": body["model"]}
        try:
            for _ in range(CHUNKS):
                chunk = {**base, "choices": [{"index": 0, "delta": {"content": WORDS}, "finish_reason": None}]}
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                await asyncio.sleep(0.002)
            usage = {"prompt_tokens": 10, "completion_tokens": 4 * CHUNKS, "total_tokens": 10 + 4 * CHUNKS}
            await response.write(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            self.finished.append(1)
        except (ConnectionResetError, RuntimeError):
            pass  # the gateway hung up: the stream was cut
        return response


@pytest.fixture(scope="module")
def long_upstream() -> LongStreams:
    return LongStreams().start()


def stream(gateway, key: str) -> tuple[int, str, bool]:
    """(status, content received, whether an error event arrived)."""
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "write forever"}]}
    text, errored = [], False
    with httpx.stream("POST", f"{gateway.v1}/chat/completions", headers={"Authorization": f"Bearer sk-{key}"},
                      json=body, timeout=60) as resp:
        if resp.status_code != 200:
            resp.read()
            return resp.status_code, "", False
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                errored = True
                continue
            for choice in event.get("choices") or []:
                text.append(choice["delta"].get("content") or "")
    return 200, "".join(text), errored


def run_many(gateway, key: str, n: int) -> list[tuple[int, str, bool]]:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: stream(gateway, key), range(n)))


def books(user) -> tuple[int, int]:
    settle()
    user.refresh_from_db()
    return user.quota, sum(Log.objects.filter(user_id=user.pk).values_list("quota", flat=True))


def test_a_stream_past_the_balance_is_cut_and_billed_for_what_it_delivered(gateway, long_upstream):
    make_channel(long_upstream.base_url, key="long-one", models=MODEL)
    user = make_user("od-one", quota=20_000)
    finished = len(long_upstream.finished)
    status, text, errored = stream(gateway, make_token(user).key)
    assert status == 200 and errored
    assert 0 < len(text) < len(WORDS) * CHUNKS  # cut well before the end
    quota, charged = books(user)
    log = Log.objects.get(user_id=user.pk)
    assert log.completion_tokens == len(text.split())  # billed what was delivered, counted exactly
    assert log.quota == charged == 20_000 - quota
    assert quota >= -SLACK
    assert len(long_upstream.finished) == finished  # the upstream stream was closed, not read to the end


def test_many_concurrent_streams_of_a_small_balance_end_with_a_bounded_overdraft(gateway, long_upstream):
    """Bound: each stream admitted may overshoot by SLACK; nothing else goes below zero."""
    make_channel(long_upstream.base_url, key="long-many", models=MODEL)
    start = 4 * ESTIMATE  # a few cents: four pre-consume holds
    user = make_user("od-many", quota=start)
    results = run_many(gateway, make_token(user).key, 12)
    admitted = [r for r in results if r[0] == 200]
    assert admitted and all(r[2] for r in admitted)  # every admitted stream was cut
    assert all(r[0] in (200, 403) for r in results)
    quota, charged = books(user)
    assert charged == start - quota
    assert quota >= -SLACK * len(admitted)


def test_unheld_streams_of_a_trusted_balance_are_capped_and_cut(gateway, long_upstream):
    """A balance over 100x the estimate skips the hold (the trusted rule), for only as many
    requests of a user at once as keep their estimates within 1/100 of the balance. Bound: those
    may spend their estimates unheld (start / 100 in all), and every stream may overshoot by SLACK."""
    make_channel(long_upstream.base_url, key="long-trusted", models=MODEL)
    start = 120 * ESTIMATE  # 900 000: trusted; 30 whole streams would cost 3 600 000
    user = make_user("od-trusted", quota=start)
    key = make_token(user).key
    warm = httpx.post(f"{gateway.v1}/chat/completions", headers={"Authorization": f"Bearer sk-{key}"},
                      json={"model": MODEL, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
    assert warm.status_code == 200  # the balance is now "seen"
    results = run_many(gateway, key, 30)
    admitted = [r for r in results if r[0] == 200]
    quota, charged = books(user)
    assert charged == start - quota
    assert quota >= -(start // 100 + SLACK * len(admitted))


@pytest.fixture
def unheld_limit():
    def set_limit(value: int) -> None:
        update_option("TrustedConcurrencyLimit", str(value))
        propagated()

    yield set_limit
    update_option("TrustedConcurrencyLimit", DEFAULT_OPTIONS["TrustedConcurrencyLimit"])
    propagated()


def slow_burst(gateway, key: str, probe_max_tokens: int) -> httpx.Response:
    """30 slow requests at once (a warm-up first, so the balance is "seen"); while they wait on
    the upstream, a probe that holds about `probe_max_tokens` × 15."""

    def chat(content: str, max_tokens: int | None = None) -> httpx.Response:
        body = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
        if max_tokens:
            body["max_tokens"] = max_tokens
        return httpx.post(f"{gateway.v1}/chat/completions", headers={"Authorization": f"Bearer sk-{key}"}, json=body, timeout=30)

    assert chat("hi").status_code == 200
    with ThreadPoolExecutor(30) as pool:
        slow = [pool.submit(chat, "slow") for _ in range(30)]
        time.sleep(1.0)  # all 30 are waiting on the upstream
        probe = chat("hi", max_tokens=probe_max_tokens)
        assert all(f.result().status_code == 200 for f in slow)
    return probe


def test_unheld_requests_stay_within_a_hundredth_of_the_balance(gateway, long_upstream):
    """120 estimates of balance: one request at a time runs unheld, the other 29 hold theirs,
    so a request needing 105 estimates is refused while they run."""
    make_channel(long_upstream.base_url, key="long-cap", models=MODEL)
    start = 120 * ESTIMATE
    user = make_user("od-cap", quota=start)
    probe = slow_burst(gateway, make_token(user).key, 105 * 500)
    assert probe.status_code == 403, probe.text
    assert probe.json()["error"]["code"] == "insufficient_user_quota"
    quota, charged = books(user)
    assert charged == start - quota


def test_at_most_the_option_of_a_users_requests_run_unheld(gateway, long_upstream, unheld_limit):
    """10 000 estimates of balance (room for 100 unheld) but TrustedConcurrencyLimit 8: 22 of the
    30 hold their estimate, so a request needing 9 990 estimates is refused while they run."""
    make_channel(long_upstream.base_url, key="long-option", models=MODEL)
    unheld_limit(8)
    start = 10_000 * ESTIMATE
    user = make_user("od-option", quota=start)
    probe = slow_burst(gateway, make_token(user).key, 9_990 * 500)
    assert probe.status_code == 403, probe.text
    quota, charged = books(user)
    assert charged == start - quota
