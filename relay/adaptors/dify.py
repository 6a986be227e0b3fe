"""Dify chatflow apps: OpenAI chat ⇄ /v1/chat-messages.

The conversation is flattened into one `query`; workflow and node progress become
reasoning_content when DIFY_DEBUG is on. Image inputs are not forwarded (Dify needs them uploaded
first, which an adaptor cannot do); the text of the message still is. Usage comes from
message_end's metadata, else the pipeline counts the text.
"""

from __future__ import annotations

import time
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
from relay.adaptors.openai_stream import usage_from
from relay.errors import LocalError, UpstreamError, upstream_error_from_response
from relay.streaming import DONE, frame

THINK_OPEN = '<details style="color:gray;background-color: #f8f8f8;padding: 8px;border-radius: 4px;" open> <summary> Thinking... </summary>'


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return []


def build_query(messages: list[Any]) -> str:
    out: list[str] = []
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        role = {"system": "SYSTEM", "developer": "SYSTEM", "assistant": "ASSISTANT"}.get(
            msg.get("role", ""), "USER"
        )
        for text in _texts(msg.get("content")):
            out.append(f"{role}: \n{text}\n")
    return "".join(out)


def _answer(text: str) -> str:
    return text.replace(THINK_OPEN, "<think>").replace("</details>", "</think>")


class DifyStream(ChunkWriter):
    def __init__(self, ctx: RelayContext) -> None:
        super().__init__(ctx, f"chatcmpl-{ctx.extra.get('request_id', '')}")
        self.debug_chunks = 0
        self.started = False

    def feed(self, event: str, data: bytes) -> list[bytes]:
        obj = self.parse(data)
        if obj is None:
            return []
        kind = obj.get("event", "")
        out: list[bytes] = []
        if not self.started:
            self.started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if kind in ("message", "agent_message"):
            text = _answer(obj.get("answer", ""))
            if text:
                self.text_parts.append(text)
                self.first_output = True
                out.append(self._chunk({"content": text}))
        elif kind.startswith(("workflow_", "node_")) and settings.DIFY_DEBUG:
            info = obj.get("data") or {}
            status = info.get("status") or kind.split("_", 1)[1]
            note = (
                f"Workflow: {info.get('workflow_id', '')} [{status}]\n"
                if kind.startswith("workflow_")
                else f"Node: {info.get('node_type', '')} [{status}]\n"
            )
            self.debug_chunks += 1
            out.append(self._chunk({"reasoning_content": note}))
        elif kind == "message_end":
            usage = usage_from((obj.get("metadata") or {}).get("usage"))
            if usage is not None:
                self.usage = usage
            out.append(self._chunk({}, "stop"))
        elif kind == "error":
            out.append(
                frame(
                    orjson.dumps(
                        {
                            "error": {
                                "message": obj.get("message", ""),
                                "type": "upstream_error",
                                "code": obj.get("code") or "stream_response_error",
                            }
                        }
                    )
                )
            )
        return out

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        usage: Usage | None = self.usage or self.ctx.extra.get("final_usage")
        if self.ctx.client_wants_usage and usage is not None:
            out.append(
                frame(
                    orjson.dumps(
                        {
                            "id": self.id,
                            "object": "chat.completion.chunk",
                            "created": self.created,
                            "model": self.ctx.origin_model,
                            "choices": [],
                            "usage": {
                                "prompt_tokens": usage.prompt_tokens,
                                "completion_tokens": usage.completion_tokens,
                                "total_tokens": usage.total,
                            },
                        }
                    )
                )
            )
        out.append(DONE)
        return out


class DifyAdaptor(Adaptor):
    name = "dify"

    def build_request(self, ctx: RelayContext) -> UpstreamRequest:
        if ctx.mode != "chat":
            raise LocalError(
                f"{ctx.mode} is not supported by Dify channels",
                status=400,
                type="invalid_request_error",
                code="invalid_api_type",
            )
        body = {
            "inputs": {},
            "query": build_query(ctx.body.get("messages") or []),
            "response_mode": "streaming" if ctx.is_stream else "blocking",
            "user": str(ctx.body.get("user") or f"chatcmpl-{ctx.extra.get('request_id', '')}"),
            "files": [],
            "auto_generate_name": False,
        }
        headers = {"Authorization": f"Bearer {ctx.channel.key}", "Content-Type": "application/json"}
        if ctx.is_stream:
            headers["Accept"] = "text/event-stream"
        return UpstreamRequest(
            "POST", self.base_url(ctx.channel) + "/v1/chat-messages", headers, orjson.dumps(body)
        )

    def parse_response(
        self, ctx: RelayContext, status: int, body: bytes, content_type: str
    ) -> ParsedResponse:
        if status // 100 != 2:
            raise upstream_error_from_response(status, body)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                "invalid Dify response",
                status=500,
                type="upstream_error",
                code="unmarshal_response_body_failed",
            ) from None
        answer = _answer(data.get("answer", ""))
        usage = usage_from((data.get("metadata") or {}).get("usage"))
        out: dict[str, Any] = {
            "id": data.get("conversation_id") or data.get("message_id", ""),
            "object": "chat.completion",
            "created": int(data.get("created_at") or time.time()),
            "model": ctx.origin_model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
            ],
        }
        if usage is not None:
            out["usage"] = {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total,
            }
        return ParsedResponse(status, orjson.dumps(out), usage, "application/json", answer)

    def stream_translator(self, ctx: RelayContext) -> StreamTranslator:
        return DifyStream(ctx)
