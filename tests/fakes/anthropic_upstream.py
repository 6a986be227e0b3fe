"""A fake Anthropic Messages API on 127.0.0.1 (aiohttp in a thread), shaped after docs.anthropic.com.

Behaviour by the channel key (sent as `x-api-key`):
- any key: one text block "Hello from Claude!", usage input 10 / output 5;
- `cache`: the same plus cache_read_input_tokens 200 and cache_creation_input_tokens 40;
- `tools`: a tool_use block (get_weather {"city": "Paris"}), stop_reason tool_use;
- `patch`: a tool_use block of apply_patch with a one-string input (PATCH), as a free-text tool becomes;
- `thinking`: a thinking block then a text block;
- `status-<code>`: that status with Claude's error body.
Streams follow Anthropic's event sequence: message_start, content_block_start/delta/stop,
message_delta, message_stop (plus a ping). Every request is recorded in `requests`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.openai_upstream import Recorded
from tests.fakes.server import ThreadedServer


PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch"


def message_for(key: str, model: str) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": 10, "output_tokens": 5}
    if key == "cache":
        usage.update(cache_read_input_tokens=200, cache_creation_input_tokens=40)
    content: list[dict[str, Any]] = [{"type": "text", "text": "Hello from Claude!"}]
    stop = "end_turn"
    if key == "tools":
        content = [{"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}]
        stop = "tool_use"
    elif key == "patch":
        content = [{"type": "tool_use", "id": "toolu_02", "name": "apply_patch", "input": {"input": PATCH}}]
        stop = "tool_use"
    elif key == "thinking":
        content = [{"type": "thinking", "thinking": "Let me think.", "signature": "sig"}, *content]
    return {
        "id": "msg_fake01", "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop, "stop_sequence": None, "usage": usage,
    }


def stream_events(msg: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    usage = dict(msg["usage"])
    start_usage = {**usage, "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": {**msg, "content": [], "stop_reason": None, "usage": start_usage}}),
        ("ping", {"type": "ping"}),
    ]
    for i, block in enumerate(msg["content"]):
        if block["type"] == "text":
            events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}))
            for piece in ("Hello", " from", " Claude!"):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": piece}}))
        elif block["type"] == "thinking":
            events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": {"type": "thinking", "thinking": ""}}))
            events.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "thinking_delta", "thinking": block["thinking"]}}))
            events.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "signature_delta", "signature": "sig"}}))
        else:
            events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": {**block, "input": {}}}))
            whole = json.dumps(block["input"])
            for piece in (whole[: len(whole) // 2], whole[len(whole) // 2 :]):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": piece}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None}, "usage": {"output_tokens": usage["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


@dataclass
class FakeAnthropic(ThreadedServer):
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)

    def requests_for(self, key: str) -> list[Recorded]:
        return [r for r in self.requests if r.key == key]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        key = request.headers.get("x-api-key", "")
        self.requests.append(Recorded(request.path, dict(request.headers), body, key, request.query_string))
        if key.startswith("status-"):
            code = int(key.split("-")[1])
            etype = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(code, "api_error")
            return web.json_response({"type": "error", "error": {"type": etype, "message": f"fake claude says {code}"}}, status=code)
        if request.path != "/v1/messages":
            return web.json_response({"type": "error", "error": {"type": "not_found_error", "message": "not found"}}, status=404)
        msg = message_for(key, body.get("model", ""))
        if not body.get("stream"):
            return web.json_response(msg)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event, data in stream_events(msg):
            await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
        await response.write_eof()
        return response
