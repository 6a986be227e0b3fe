"""The fake OpenAI upstream, also answering the provider-specific chat paths (MiniMax's
/v1/text/chatcompletion_v2) so every OpenAI-compatible adaptor can be exercised end to end.
`raw_paths` keeps the path each request really arrived at. Key `reasoning`: a reasoning model's
answer (reasoning_content "Think A" + "Think B", then content "Answer")."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.openai_upstream import FakeOpenAI, Recorded

ALIASES = {"/v1/text/chatcompletion_v2": "/v1/chat/completions"}


@dataclass
class FakeCompatible(FakeOpenAI):
    raw_paths: list[str] = field(default_factory=list)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.raw_paths.append(request.path_qs)
        alias = ALIASES.get(request.path)
        if alias:
            request = request.clone(rel_url=request.rel_url.with_path(alias))
        if alias is None and "reasoning" in request.headers.get("Authorization", "") and request.path.endswith("/chat/completions"):
            return await self._reasoning(request)
        return await super()._handle(request)

    async def _reasoning(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        self.requests.append(Recorded(request.path, dict(request.headers), body, "reasoning"))
        usage = {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20}
        base = {"id": "chatcmpl-r", "created": int(time.time()), "model": body.get("model", "")}
        if not body.get("stream"):
            msg = {"role": "assistant", "content": "Answer", "reasoning_content": "Think AThink B"}
            return web.json_response({**base, "object": "chat.completion", "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}], "usage": usage})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        deltas = [{"role": "assistant", "reasoning_content": "Think A"}, {"reasoning_content": "Think B"}, {"content": "Answer"}]
        for d in deltas:
            chunk = {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        end = {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}
        await response.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        return response

