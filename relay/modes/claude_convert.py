"""Claude Messages ⇄ OpenAI chat, for /v1/messages requests that land on an OpenAI-type channel.

Spec: shared/spec/tasks-special.md §5.5–§5.6. Sensible versions of the quirks: a system block
list is joined by its texts, the tool_use id comes from the tool call itself, and every upstream
chunk goes through the converter (no OpenAI frame leaks into the Claude stream).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from relay.adaptors.base import RelayContext, StreamTranslator, Usage
from relay.adaptors.openai_stream import chunk_of, usage_from
from relay.streaming import frame_event

FINISH_TO_STOP = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
}


def _blocks_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""


def claude_to_openai_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model}
    for key in ("max_tokens", "temperature", "top_p", "stream"):
        if body.get(key) is not None:
            out[key] = body[key]
    stops = body.get("stop_sequences") or []
    if len(stops) == 1:
        out["stop"] = stops[0]
    elif stops:
        out["stop"] = list(stops)
    tools = [
        {
            "type": "function",
            "function": {
                "name": t.get("name", ""),
                "description": t.get("description", ""),
                "parameters": t.get("input_schema") or {"type": "object", "properties": {}},
            },
        }
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("name")
    ]
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "any":
            out["tool_choice"] = "required"
        elif kind in ("auto", "none"):
            out["tool_choice"] = kind
        elif kind == "tool" and choice.get("name"):
            out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    messages: list[dict[str, Any]] = []
    system = _blocks_text(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        role = msg.get("role") or "user"
        content = msg.get("content")
        if isinstance(content, str):
            messages.append({"role": role, "content": content})
            continue
        parts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for block in content or []:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text":
                parts.append({"type": "text", "text": block.get("text", "")})
            elif kind == "image":
                src = block.get("source") or {}
                url = (
                    src.get("url")
                    if src.get("type") == "url"
                    else f"data:{src.get('media_type', '')};base64,{src.get('data', '')}"
                )
                parts.append({"type": "image_url", "image_url": {"url": url}})
            elif kind == "tool_use":
                calls.append(
                    {
                        "id": block.get("id", ""),
                        "type": "function",
                        "function": {
                            "name": block.get("name", ""),
                            "arguments": orjson.dumps(block.get("input") or {}).decode(),
                        },
                    }
                )
            elif kind == "tool_result":
                result = block.get("content")
                text = result if isinstance(result, str) else _blocks_text(result)
                messages.append(
                    {"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": text}
                )
        if calls:
            text = "".join(p["text"] for p in parts if p["type"] == "text")
            messages.append({"role": "assistant", "content": text or None, "tool_calls": calls})
        elif parts:
            if all(p["type"] == "text" for p in parts):
                messages.append({"role": role, "content": "".join(p["text"] for p in parts)})
            else:
                messages.append({"role": role, "content": parts})
    out["messages"] = messages
    return out


def claude_usage_body(u: Usage | None) -> dict[str, int]:
    if u is None:
        return {"input_tokens": 0, "output_tokens": 0}
    return {
        "input_tokens": max(u.prompt_tokens - u.cached_tokens - u.cache_creation_tokens, 0),
        "output_tokens": u.completion_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "cache_creation_input_tokens": u.cache_creation_tokens,
    }


def openai_to_claude_response(data: dict[str, Any], model: str, usage: Usage | None) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    stop = "end_turn"
    for choice in data.get("choices") or []:
        msg = choice.get("message") or {}
        reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        if reasoning:
            content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
        if msg.get("content"):
            content.append({"type": "text", "text": msg["content"]})
        for call in msg.get("tool_calls") or []:
            fn = call.get("function") or {}
            try:
                args = orjson.loads(fn.get("arguments") or "{}")
            except orjson.JSONDecodeError:
                args = {}
            content.append(
                {"type": "tool_use", "id": call.get("id", ""), "name": fn.get("name", ""), "input": args}
            )
        reason = choice.get("finish_reason") or "stop"
        stop = FINISH_TO_STOP.get(reason, reason)
        break
    return {
        "id": data.get("id") or f"msg_{time.time_ns()}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": claude_usage_body(usage),
    }


class OpenAIToClaudeStream(StreamTranslator):
    """OpenAI chunks → the full Claude event sequence (message_start … message_stop)."""

    def __init__(self, ctx: RelayContext, prompt_tokens: int) -> None:
        super().__init__(ctx)
        self.prompt_tokens = prompt_tokens
        self.started = False
        self.block: str | None = None  # text | thinking | tool_use
        self.index = -1
        self.tool_ids: dict[int, int] = {}  # OpenAI tool index → Claude block index
        self.stop: str | None = None

    def _ev(self, kind: str, payload: dict[str, Any]) -> bytes:
        return frame_event(kind, orjson.dumps({"type": kind, **payload}))

    def _start(self, chunk: dict[str, Any]) -> list[bytes]:
        self.started = True
        message: dict[str, Any] = {
            "id": chunk.get("id") or f"msg_{time.time_ns()}",
            "type": "message",
            "role": "assistant",
            "model": self.ctx.origin_model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.prompt_tokens, "output_tokens": 0},
        }
        return [self._ev("message_start", {"message": message})]

    def _open(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self.index += 1
        self.block = kind
        out.append(self._ev("content_block_start", {"index": self.index, "content_block": block}))
        return out

    def _close(self) -> list[bytes]:
        if self.block is None:
            return []
        self.block = None
        return [self._ev("content_block_stop", {"index": self.index})]

    def feed(self, event: str, data: bytes) -> list[bytes]:
        chunk = chunk_of(data)
        if chunk is None:
            return []
        out: list[bytes] = []
        if "error" in chunk and "choices" not in chunk:
            err = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            return [
                self._ev(
                    "error",
                    {
                        "error": {
                            "type": str(err.get("type") or "upstream_error"),
                            "message": str(err.get("message") or ""),
                        }
                    },
                )
            ]
        if not self.started:
            out += self._start(chunk)
        usage = usage_from(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                if self.block != "thinking":
                    out += self._open("thinking", {"type": "thinking", "thinking": ""})
                out.append(
                    self._ev(
                        "content_block_delta",
                        {"index": self.index, "delta": {"type": "thinking_delta", "thinking": reasoning}},
                    )
                )
                self.text_parts.append(reasoning)
            if delta.get("content"):
                if self.block != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                out.append(
                    self._ev(
                        "content_block_delta",
                        {"index": self.index, "delta": {"type": "text_delta", "text": delta["content"]}},
                    )
                )
                self.text_parts.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                ti = int(call.get("index") or 0)
                fn = call.get("function") or {}
                if ti not in self.tool_ids:
                    out += self._open(
                        "tool_use",
                        {
                            "type": "tool_use",
                            "id": call.get("id", ""),
                            "name": fn.get("name", ""),
                            "input": {},
                        },
                    )
                    self.tool_ids[ti] = self.index
                    self.tool_calls = len(self.tool_ids)
                    self.text_parts.append(fn.get("name", ""))
                if fn.get("arguments"):
                    out.append(
                        self._ev(
                            "content_block_delta",
                            {
                                "index": self.tool_ids[ti],
                                "delta": {"type": "input_json_delta", "partial_json": fn["arguments"]},
                            },
                        )
                    )
                    self.text_parts.append(fn["arguments"])
            if choice.get("finish_reason"):
                reason = choice["finish_reason"]
                self.stop = FINISH_TO_STOP.get(reason, reason)
        if self.text_parts:
            self.first_output = True
        return out

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        if not self.started:
            out += self._start({})
        out += self._close()
        usage: Usage | None = self.usage or self.ctx.extra.get("final_usage")
        body = claude_usage_body(usage)
        out.append(
            self._ev(
                "message_delta",
                {"delta": {"stop_reason": self.stop or "end_turn", "stop_sequence": None}, "usage": body},
            )
        )
        out.append(self._ev("message_stop", {}))
        return out
