"""A fake provider for channel upkeep tests, served for real on 127.0.0.1 (aiohttp in a thread).

Chat/embeddings answer like OpenAI; `delay` slows every answer down; `broken` turns them into 401s
(a dead key). Balance endpoints of the providers New API can query answer from `balances`.
Every request is recorded as (method, path, query, headers, json body).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer


@dataclass
class FakeOps(ThreadedServer):
    host: str = "127.0.0.1"
    port: int = 0
    delay: float = 0.0
    broken: bool = False
    requests: list[tuple[str, str, str, dict, Any]] = field(default_factory=list)
    subscription: dict = field(default_factory=lambda: {"hard_limit_usd": 100.0, "has_payment_method": True})
    usage: dict = field(default_factory=lambda: {"total_usage": 2500.0})

    def reset(self) -> None:
        self.requests.clear()
        self.delay = 0.0
        self.broken = False

    def paths(self) -> list[str]:
        return [r[1] for r in self.requests]

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.requests.append((request.method, request.path, request.query_string, dict(request.headers), body))
        if self.delay:
            await asyncio.sleep(self.delay)
        path = request.path
        if path.endswith("/dashboard/billing/subscription"):
            return web.json_response(self.subscription)
        if path.endswith("/dashboard/billing/usage"):
            return web.json_response(self.usage)
        if path == "/user/balance":
            return web.json_response({"is_available": True, "balance_infos": [
                {"currency": "USD", "total_balance": "1.00"}, {"currency": "CNY", "total_balance": "42.50"}]})
        if path == "/v1/user/info":
            return web.json_response({"code": 20000, "data": {"totalBalance": "7.25"}})
        if path == "/v1/credits":
            return web.json_response({"data": {"total_credits": 10, "total_usage": 12.5}})
        if self.broken:
            return web.json_response(
                {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}},
                status=401,
            )
        usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        if path.endswith("/embeddings"):
            return web.json_response({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}],
                                      "usage": {"prompt_tokens": 2, "total_tokens": 2}})
        if path.endswith("/chat/completions"):
            return web.json_response({"id": "chatcmpl-ops", "object": "chat.completion", "model": (body or {}).get("model"),
                                      "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                                                   "finish_reason": "stop"}], "usage": usage})
        return web.json_response({"error": {"message": "not found", "type": "invalid_request_error"}}, status=404)
