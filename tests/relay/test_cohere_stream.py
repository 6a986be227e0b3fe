"""Cohere's NDJSON stream is relayed line by line: the first OpenAI chunk reaches the client while
the upstream is still holding the rest back; split lines are reassembled."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import openai
import pytest
from aiohttp import web

from billing.models import Log
from relay.streaming import iter_lines
from tests.conftest import live, make_channel, make_token, make_user, settle

PAUSE = 1.5


def start_slow_cohere() -> str:
    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "application/stream+json"})
        await resp.prepare(request)
        first = json.dumps({"is_finished": False, "event_type": "stream-start", "generation_id": "g-9"}) + "\n"
        first += json.dumps({"is_finished": False, "event_type": "text-generation", "text": "Hello"}) + "\n"
        await resp.write(first.encode())
        await asyncio.sleep(PAUSE)
        rest = json.dumps({"is_finished": False, "event_type": "text-generation", "text": " slowly"}) + "\n"
        rest += json.dumps({"is_finished": True, "event_type": "stream-end", "finish_reason": "COMPLETE", "response": {"meta": {"billed_units": {"input_tokens": 9, "output_tokens": 2}}}})
        await resp.write(rest[:20].encode())
        await resp.write(rest[20:].encode())  # the last line has no newline: the tail counts too
        await resp.write_eof()
        return resp

    ready = threading.Event()
    port: list[int] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/chat", handle)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port.append(site._server.sockets[0].getsockname()[1])
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait(10)
    return f"http://127.0.0.1:{port[0]}"


async def test_iter_lines_reassembles_split_lines():
    async def chunks():
        for piece in (b'{"a":', b"1}\n\n", b'{"b":2}\r\n{"c"', b":3}"):
            yield piece

    assert [line async for _, line in iter_lines(chunks())] == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


@pytest.mark.relay
@live
def test_cohere_stream_is_incremental(gateway):
    make_channel(start_slow_cohere(), key="slow-cohere", type=34, models="command-r", name="slow-cohere")
    user = make_user("co-slow", quota=1_000_000)
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{make_token(user).key}", max_retries=0)
    started = time.monotonic()
    seen: list[tuple[float, str]] = []
    for chunk in client.chat.completions.create(model="command-r", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].delta.content:
            seen.append((time.monotonic() - started, chunk.choices[0].delta.content))
        if chunk.usage:
            assert (chunk.usage.prompt_tokens, chunk.usage.completion_tokens) == (9, 2)
    assert [text for _, text in seen] == ["Hello", " slowly"]
    assert seen[0][0] < PAUSE - 0.3 and seen[1][0] >= PAUSE - 0.1
    settle()
    assert Log.objects.filter(user_id=user.pk).values_list("prompt_tokens", "completion_tokens").get() == (9, 2)
