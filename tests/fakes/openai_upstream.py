"""A fake OpenAI-compatible upstream, served for real on 127.0.0.1 by aiohttp in a thread.

Behaviour is chosen by the channel key the gateway forwards (`Authorization: Bearer <key>`):
- any key: normal answers (chat JSON or SSE, completions, embeddings, models);
- `status-<code>`: that HTTP status with an OpenAI error body;
- `nousage`: no usage anywhere (the gateway must count tokens itself);
- `slow`: stream 40 chunks 50 ms apart (for disconnect tests); `finished_streams` counts full ones;
- `cut`: stream 3 content chunks, then drop the connection;
- `empty`: a stream with no content at all;
- `stall`: stream 2 content chunks, then go silent (for the idle timeout) until the reader leaves.
Every request is recorded in `requests` (path, headers, JSON body, key).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer

STREAM_WORDS = ["Hello", " from", " the", " fake", " upstream", "!"]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    key: str
    query: str = ""


@dataclass
class FakeOpenAI(ThreadedServer):
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    usage_prompt: int = 11
    usage_completion: int = 7
    finished_streams: list[str] = field(default_factory=list)

    # -- lifecycle -------------------------------------------------------------------

    def reset(self) -> None:
        self.requests.clear()

    def requests_for(self, key: str) -> list[Recorded]:
        return [r for r in self.requests if r.key == key]

    # -- handlers ----------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        auth = request.headers.get("Authorization", "") or request.headers.get("api-key", "")
        key = auth.removeprefix("Bearer ").strip()
        self.requests.append(Recorded(request.path, dict(request.headers), body, key, request.query_string))
        if key.startswith("status-"):
            code = int(key.split("-")[1])
            return web.json_response(
                {"error": {"message": f"fake upstream says {code}", "type": "upstream_test", "code": f"e{code}"}},
                status=code,
            )
        path = request.path
        if path.endswith("/models") and request.method == "GET":
            return web.json_response({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})
        if path.endswith("/embeddings"):
            return self._embeddings(body, key)
        if path.endswith("/chat/completions"):
            if isinstance(body, dict) and body.get("stream"):
                return await self._chat_stream(request, body, key)
            return self._chat(body, key)
        if path.endswith("/completions"):
            return self._completion(body, key)
        return web.json_response({"error": {"message": "not found", "type": "invalid_request_error"}}, status=404)

    def _usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.usage_prompt,
            "completion_tokens": self.usage_completion,
            "total_tokens": self.usage_prompt + self.usage_completion,
        }

    def _chat(self, body: dict, key: str) -> web.Response:
        payload: dict[str, Any] = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "".join(STREAM_WORDS)}, "finish_reason": "stop"}
            ],
        }
        if key != "nousage":
            payload["usage"] = self._usage()
        return web.json_response(payload)

    def _completion(self, body: dict, key: str) -> web.Response:
        payload: dict[str, Any] = {
            "id": "cmpl-fake",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "text": "".join(STREAM_WORDS), "finish_reason": "stop", "logprobs": None}],
        }
        if key != "nousage":
            payload["usage"] = self._usage()
        return web.json_response(payload)

    def _embeddings(self, body: dict, key: str) -> web.Response:
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        payload: dict[str, Any] = {
            "object": "list",
            "model": body.get("model", ""),
            "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(len(items))],
        }
        if key != "nousage":
            payload["usage"] = {"prompt_tokens": self.usage_prompt, "total_tokens": self.usage_prompt}
        return web.json_response(payload)

    async def _chat_stream(self, request: web.Request, body: dict, key: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": body.get("model", "")}

        async def emit(obj: Any) -> None:
            data = obj if isinstance(obj, str) else json.dumps(obj)
            await response.write(f"data: {data}\n\n".encode())

        words = [] if key == "empty" else [" tok"] * 40 if key == "slow" else STREAM_WORDS
        await emit({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        for i, word in enumerate(words):
            if key == "slow":
                await asyncio.sleep(0.05)
            if key == "cut" and i == 3:
                request.transport.close()
                return response
            if key == "stall" and i == 2:
                while request.transport is not None and not request.transport.is_closing():
                    await asyncio.sleep(0.1)
                return response
            await emit({**base, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]})
        await emit({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        if include_usage and key not in ("nousage", "empty"):
            await emit({**base, "choices": [], "usage": self._usage()})
        await emit("[DONE]")
        await response.write_eof()
        self.finished_streams.append(key)
        return response
