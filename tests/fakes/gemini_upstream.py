"""A fake Gemini API (generateContent, streamGenerateContent?alt=sse, countTokens, embedContent,
batchEmbedContents) after ai.google.dev's reference. Behaviour by `x-goog-api-key`: any key answers
"Hello from Gemini!" (usage 8 prompt / 4 candidates); `tools` answers a functionCall; `round` calls
`round_tool` until it gets the tool's answer back; `rich` adds a thought and cached/thinking usage; `long` streams 300 chunks;
`status-<code>` errors."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.openai_upstream import Recorded
from tests.fakes.server import ThreadedServer

USAGE = {"promptTokenCount": 8, "candidatesTokenCount": 4, "totalTokenCount": 12}
# key `rich`: a thought part, cached prompt tokens and thinking tokens
RICH_USAGE = {"promptTokenCount": 100, "candidatesTokenCount": 10, "cachedContentTokenCount": 60, "thoughtsTokenCount": 20, "totalTokenCount": 130}


@dataclass
class FakeGemini(ThreadedServer):
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    # key `round`: a call to this tool until the last turn carries its functionResponse, then text
    round_tool: str = "get_weather"
    round_args: dict[str, Any] = field(default_factory=lambda: {"city": "Paris"})

    def last(self, key: str) -> Recorded:
        return [r for r in self.requests if r.key == key][-1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read() or b"null")
        key = request.headers.get("x-goog-api-key", "")
        self.requests.append(Recorded(request.path, dict(request.headers), body, key, request.query_string))
        if key.startswith("status-"):
            code = int(key.split("-")[1])
            return web.json_response({"error": {"code": code, "message": f"fake gemini says {code}", "status": {400: "FAILED_PRECONDITION", 403: "PERMISSION_DENIED"}.get(code, "UNAVAILABLE")}}, status=code)
        path = request.path
        if path.endswith(":batchEmbedContents"):
            return web.json_response({"embeddings": [{"values": [0.1, 0.2]} for _ in body["requests"]]})
        if path.endswith(":embedContent"):
            return web.json_response({"embedding": {"values": [0.3, 0.4]}})
        if path.endswith(":countTokens"):
            return web.json_response({"totalTokens": 7})
        usage = RICH_USAGE if key == "rich" else USAGE
        if key == "tools":
            parts: list[dict[str, Any]] = [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]
        elif key == "round":
            last = (body.get("contents") or [{}])[-1].get("parts") or []
            answers = [p["functionResponse"] for p in last if "functionResponse" in p]
            parts = [{"text": f"Tool said: {json.dumps(answers[0]['response'])[:200]}"}] if answers else [{"functionCall": {"name": self.round_tool, "args": self.round_args}}]
        elif key == "rich":
            parts = [{"text": "Let me think.", "thought": True}, {"text": "Hello from Gemini!"}]
        else:
            parts = [{"text": "Hello from Gemini!"}]
        if path.endswith(":generateContent"):
            return web.json_response({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}], "usageMetadata": usage, "modelVersion": path.rsplit("/", 1)[1].split(":")[0]})
        if path.endswith(":streamGenerateContent"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            pieces = [[{"text": "Hello"}], [{"text": " from Gemini!"}]] if key not in ("tools", "round", "rich") else [parts]
            if key == "long":
                pieces = [[{"text": " word word word word"}]] * 300
            for i, p in enumerate(pieces):
                event: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": p}, "index": 0}]}
                if i == len(pieces) - 1:
                    event["candidates"][0]["finishReason"] = "STOP"
                    event["usageMetadata"] = usage
                try:
                    await response.write(f"data: {json.dumps(event)}\r\n\r\n".encode())
                except ConnectionError:
                    return response  # the gateway stopped reading (a stream it cut)
                if key == "long":
                    await asyncio.sleep(0.002)
            await response.write_eof()
            return response
        return web.json_response({"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}, status=404)
