"""A fake Gemini API (generateContent, streamGenerateContent?alt=sse, batchEmbedContents) after
ai.google.dev's reference. Behaviour by `x-goog-api-key`: any key answers "Hello from Gemini!"
(usage 8 prompt / 4 candidates); `tools` answers a functionCall; `status-<code>` errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.openai_upstream import Recorded
from tests.fakes.server import ThreadedServer

USAGE = {"promptTokenCount": 8, "candidatesTokenCount": 4, "totalTokenCount": 12}


@dataclass
class FakeGemini(ThreadedServer):
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)

    def last(self, key: str) -> Recorded:
        return [r for r in self.requests if r.key == key][-1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read() or b"null")
        key = request.headers.get("x-goog-api-key", "")
        self.requests.append(Recorded(request.path, dict(request.headers), body, key, request.query_string))
        if key.startswith("status-"):
            code = int(key.split("-")[1])
            return web.json_response({"error": {"code": code, "message": f"fake gemini says {code}", "status": "PERMISSION_DENIED"}}, status=code)
        path = request.path
        if path.endswith(":batchEmbedContents"):
            return web.json_response({"embeddings": [{"values": [0.1, 0.2]} for _ in body["requests"]]})
        if key == "tools":
            parts: list[dict[str, Any]] = [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]
        else:
            parts = [{"text": "Hello from Gemini!"}]
        if path.endswith(":generateContent"):
            return web.json_response({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}], "usageMetadata": USAGE})
        if path.endswith(":streamGenerateContent"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            pieces = [[{"text": "Hello"}], [{"text": " from Gemini!"}]] if key != "tools" else [parts]
            for i, p in enumerate(pieces):
                event: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": p}, "index": 0}]}
                if i == len(pieces) - 1:
                    event["candidates"][0]["finishReason"] = "STOP"
                    event["usageMetadata"] = USAGE
                await response.write(f"data: {json.dumps(event)}\r\n\r\n".encode())
            await response.write_eof()
            return response
        return web.json_response({"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}, status=404)
