"""Cohere chat: OpenAI chat ⇄ Cohere v1 /chat. Rerank lives in rerank.py.

The last user message is `message`; every earlier turn goes to chat_history (New API overwrote
`message` with each user turn and lost the earlier ones). Cohere streams newline-delimited JSON,
not SSE: each line is converted to an OpenAI SSE chunk as it arrives (`event_source` = iter_lines).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from django.conf import settings

from relay.adaptors.base import (
    Adaptor,
    ChunkWriter,
    ParsedResponse,
    RelayContext,
    StreamTranslator,
    UpstreamRequest,
    Usage,
)
from relay.errors import LocalError, upstream_error_from_response
from relay.streaming import DONE, frame, iter_lines

ROLES = {"assistant": "CHATBOT", "system": "SYSTEM", "developer": "SYSTEM"}
FINISH: dict[str | None, str] = {"COMPLETE": "stop", "MAX_TOKENS": "length"}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def openai_to_cohere(body: dict[str, Any], model: str) -> dict[str, Any]:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    history = [
        {"role": ROLES.get(m.get("role", ""), "USER"), "message": _text(m.get("content"))}
        for i, m in enumerate(messages)
        if i != last_user
    ]
    out: dict[str, Any] = {
        "model": model,
        "message": _text(messages[last_user].get("content")) if last_user >= 0 else "",
        "chat_history": history,
        "stream": bool(body.get("stream")),
        "max_tokens": int(body.get("max_tokens") or body.get("max_completion_tokens") or 4000),
    }
    for src, dst in (("temperature", "temperature"), ("top_p", "p"), ("seed", "seed")):
        if body.get(src) is not None:
            out[dst] = body[src]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    safety = getattr(settings, "COHERE_SAFETY_SETTING", "NONE") or "NONE"
    if safety != "NONE":
        out["safety_mode"] = safety
    return out


def cohere_usage(meta: Any) -> Usage | None:
    units = (meta or {}).get("billed_units") if isinstance(meta, dict) else None
    if not isinstance(units, dict):
        return None
    prompt, completion = int(units.get("input_tokens") or 0), int(units.get("output_tokens") or 0)
    return Usage(prompt, completion) if prompt or completion else None


def _usage_body(u: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total,
    }


class CohereAdaptor(Adaptor):
    """Also OwnStreamFormat: the answer streams as NDJSON."""

    name = "cohere"

    def build_request(self, ctx: RelayContext) -> UpstreamRequest:
        if ctx.mode != "chat":
            raise LocalError(
                f"{ctx.mode} is not supported by Cohere channels",
                status=400,
                type="invalid_request_error",
                code="invalid_api_type",
            )
        headers = {
            "Authorization": f"Bearer {ctx.channel.key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        return UpstreamRequest(
            "POST",
            self.base_url(ctx.channel) + "/v1/chat",
            headers,
            orjson.dumps(openai_to_cohere(ctx.body, ctx.upstream_model)),
        )

    def parse_response(
        self, ctx: RelayContext, status: int, body: bytes, content_type: str
    ) -> ParsedResponse:
        if status // 100 != 2:
            raise upstream_error_from_response(status, body)
        data = orjson.loads(body)
        usage = cohere_usage(data.get("meta"))
        text = data.get("text", "")
        out: dict[str, Any] = {
            "id": data.get("response_id") or data.get("generation_id", ""),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": ctx.origin_model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": FINISH.get(data.get("finish_reason"), "stop"),
                }
            ],
        }
        if usage:
            out["usage"] = _usage_body(usage)
        return ParsedResponse(status, orjson.dumps(out), usage, "application/json", text)

    def is_stream_response(self, content_type: str) -> bool:
        return "stream+json" in content_type or "ndjson" in content_type or "jsonl" in content_type

    def event_source(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, bytes]]:
        return iter_lines(chunks)

    def stream_translator(self, ctx: RelayContext) -> StreamTranslator:
        return CohereStream(ctx)


class CohereStream(ChunkWriter):
    """One NDJSON event → one OpenAI chunk, as each line arrives."""

    def feed(self, event: str, data: bytes) -> list[bytes]:
        obj = self.parse(data)
        if obj is None:
            return []
        kind = obj.get("event_type")
        if kind == "stream-start":
            self.id = obj.get("generation_id", "")
            return [self._chunk({"role": "assistant", "content": ""}, None)]
        if kind == "text-generation":
            piece = obj.get("text", "")
            if not piece:
                return []
            self.text_parts.append(piece)
            self.first_output = True
            return [self._chunk({"content": piece}, None)]
        if obj.get("is_finished"):
            self.usage = cohere_usage((obj.get("response") or {}).get("meta")) or self.usage
            return [self._chunk({}, FINISH.get(obj.get("finish_reason"), "stop"))]
        return []

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        usage = self.usage or self.ctx.extra.get("final_usage")
        if self.ctx.client_wants_usage and usage:
            out.append(
                frame(
                    orjson.dumps(
                        {
                            "id": self.id,
                            "object": "chat.completion.chunk",
                            "created": self.created,
                            "model": self.ctx.origin_model,
                            "choices": [],
                            "usage": _usage_body(usage),
                        }
                    )
                )
            )
        out.append(DONE)
        return out
