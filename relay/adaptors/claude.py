"""Anthropic Claude: OpenAI chat ⇄ Claude Messages, plus the native /v1/messages pass-through.

Usage is reported the OpenAI way: prompt_tokens
includes cache reads and cache writes (Anthropic's input_tokens excludes them), with
prompt_tokens_details.cached_tokens / cache_creation_tokens, so billing can price each at its
own ratio. The legacy /v1/complete mode is not used: every model speaks Messages today.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from relay.adaptors.base import (
    Adaptor,
    ChunkWriter,
    OptionReader,
    ParsedResponse,
    RelayContext,
    StreamTranslator,
    UpstreamRequest,
    Usage,
)
from relay.errors import LocalError, UpstreamError, upstream_error_from_response
from relay.streaming import DONE, frame, frame_event

ANTHROPIC_VERSION = "2023-06-01"
# looked up with the upstream value as is, None included
STOP_REASONS: dict[str | None, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


# -- shared helpers -----------------------------------------------------------------------------
def claude_usage(obj: Any, prev: Usage | None = None) -> Usage | None:
    """Anthropic usage → ours: prompt = input + cache reads + cache writes."""
    if not isinstance(obj, dict):
        return prev
    u = prev or Usage()
    read = int(obj.get("cache_read_input_tokens") or 0)
    creation = int(obj.get("cache_creation_input_tokens") or 0)
    inp = int(obj.get("input_tokens") or 0)
    if inp or read or creation:
        u.prompt_tokens = inp + read + creation
        u.cached_tokens = read
        u.cache_creation_tokens = creation
    out = int(obj.get("output_tokens") or 0)
    if out:
        u.completion_tokens = out
    return u


def openai_usage_body(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total,
        "prompt_tokens_details": {
            "cached_tokens": u.cached_tokens,
            "cache_creation_tokens": u.cache_creation_tokens,
        },
    }


def claude_error(data: dict[str, Any], status: int = 500) -> UpstreamError:
    err = e if isinstance(e := data.get("error"), dict) else {}
    etype = str(err.get("type") or "upstream_error")
    return UpstreamError(
        str(err.get("message") or "upstream error"),
        status=status,
        type=etype,
        code=etype,
        upstream_body=orjson.dumps(data),
    )


def default_max_tokens(options: OptionReader, model: str) -> int:
    table = options.get_json("claude.default_max_tokens", {"default": 8192}) or {}
    return int(table.get(model) or table.get("default") or 8192)


def apply_thinking_suffix(body: dict[str, Any], model: str, options: OptionReader) -> str:
    """`<model>-thinking`: strip the suffix; enable extended thinking unless the client set it."""
    if not model.endswith("-thinking"):
        return model
    model = model.removesuffix("-thinking")
    if options.get_bool("claude.thinking_adapter_enabled") and not body.get("thinking"):
        max_tokens = max(int(body.get("max_tokens") or 0), 1280)
        pct = options.get_float("claude.thinking_adapter_budget_tokens_percentage", 0.8)
        body["max_tokens"] = max_tokens
        body["thinking"] = {"type": "enabled", "budget_tokens": int(max_tokens * pct)}
        body["temperature"] = 1.0
        body.pop("top_p", None)  # Anthropic rejects top_p with thinking; New API sent 0
    return model


def claude_headers(ctx: RelayContext) -> dict[str, str]:
    headers = {
        "x-api-key": ctx.channel.key,
        "anthropic-version": ctx.client_headers.get("anthropic-version") or ANTHROPIC_VERSION,
        "Content-Type": "application/json",
    }
    if ctx.client_headers.get("anthropic-beta"):
        headers["anthropic-beta"] = ctx.client_headers["anthropic-beta"]
    if ctx.is_stream:
        headers["Accept"] = "text/event-stream"
    extra = (ctx.options.get_json("claude.model_headers_settings", {}) or {}).get(ctx.origin_model) or {}
    for name, values in extra.items():
        headers[name] = ", ".join(values) if isinstance(values, list) else str(values)
    return headers


# -- OpenAI → Claude request -----------------------------------------------------------------------
def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _image_block(url: str) -> dict[str, Any] | None:
    if url.startswith("data:") and ";base64," in url:
        media, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    return None


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        block: dict[str, Any] | None = None
        if part.get("type") == "text":
            block = {"type": "text", "text": part.get("text", "")}
        elif part.get("type") == "image_url":
            url = part.get("image_url")
            url = url.get("url", "") if isinstance(url, dict) else str(url or "")
            block = _image_block(url)
        if block:
            # OpenRouter-style clients mark prompt-cache breakpoints on OpenAI content parts
            if isinstance(part.get("cache_control"), dict):
                block["cache_control"] = part["cache_control"]
            blocks.append(block)
    return blocks


def openai_to_claude(body: dict[str, Any], model: str, options: OptionReader) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model}
    system_parts: list[str] = []
    system_blocks: list[dict[str, Any]] = []  # the same as blocks, kept when they mark cache breakpoints
    messages: list[dict[str, Any]] = []

    def push(role: str, blocks: list[dict[str, Any]]) -> None:
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)  # Claude wants alternating roles
        else:
            messages.append({"role": role, "content": blocks})

    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        role = msg.get("role") or "user"
        if role in ("system", "developer"):
            text = _text_of(msg.get("content"))
            if text:
                system_parts.append(text)
            system_blocks += [b for b in _content_blocks(msg.get("content")) if b["type"] == "text"]
            continue
        if role == "tool":
            content = msg.get("content")
            block = {
                "type": "tool_result",
                "tool_use_id": msg.get("tool_call_id", ""),
                "content": content if isinstance(content, str) else _content_blocks(content),
            }
            push("user", [block])
            continue
        blocks = _content_blocks(msg.get("content"))
        if role == "assistant":
            for call in msg.get("tool_calls") or []:
                fn = call.get("function") or {}
                try:
                    args = orjson.loads(fn.get("arguments") or "{}")
                except orjson.JSONDecodeError:
                    continue
                blocks.append(
                    {"type": "tool_use", "id": call.get("id", ""), "name": fn.get("name", ""), "input": args}
                )
        else:
            role = "user"
        if not blocks:
            blocks = [{"type": "text", "text": "..."}]
        push(role, blocks)
    if not messages or messages[0]["role"] != "user":
        messages.insert(0, {"role": "user", "content": [{"type": "text", "text": "..."}]})
    out["messages"] = messages
    if any("cache_control" in b for b in system_blocks):
        out["system"] = system_blocks
    elif system_parts:
        out["system"] = "\n".join(system_parts)
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    out["max_tokens"] = int(max_tokens) if max_tokens else default_max_tokens(options, model)
    for key in ("temperature", "top_p", "top_k", "stream"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = []
    for tool in body.get("tools") or []:
        fn = tool.get("function") or {}
        params = fn.get("parameters")
        schema = params if isinstance(params, dict) else {"type": "object", "properties": {}}
        tools.append(
            {"name": fn.get("name", ""), "description": fn.get("description", ""), "input_schema": schema}
        )
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if choice == "required":
        out["tool_choice"] = {"type": "any"}
    elif choice in ("auto", "none"):
        out["tool_choice"] = {"type": choice}
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        out["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
    if body.get("user"):
        out["metadata"] = {"user_id": str(body["user"])}
    return out


# -- Claude → OpenAI response ------------------------------------------------------------------------
def claude_to_openai(data: dict[str, Any], model: str, created: int) -> tuple[dict[str, Any], Usage | None]:
    text_parts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in data.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            text_parts.append(block.get("text", ""))
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
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
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text_parts)}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    stop = data.get("stop_reason")
    usage = claude_usage(data.get("usage"))
    out = {
        "id": data.get("id", ""),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": STOP_REASONS.get(stop, stop)}],
    }
    if usage is not None:
        out["usage"] = openai_usage_body(usage)
    return out, usage


class ClaudeToOpenAIStream(ChunkWriter):
    """Claude SSE events → OpenAI chat.completion.chunk frames."""

    def __init__(self, ctx: RelayContext) -> None:
        super().__init__(ctx)
        self.created = int(ctx.extra.get("created") or 0)
        self.tool_index = -1
        self.finish_reason: str | None = None

    def feed(self, event: str, data: bytes) -> list[bytes]:
        obj = self.parse(data)
        if obj is None:
            return []
        kind = obj.get("type") or event
        if kind == "message_start":
            msg = obj.get("message") or {}
            self.id = msg.get("id", "")
            self.usage = claude_usage(msg.get("usage"), self.usage)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = obj.get("content_block") or {}
            if block.get("type") == "tool_use":
                self.tool_index += 1
                self.tool_calls = self.tool_index + 1
                self.text_parts.append(block.get("name", ""))
                self.first_output = True
                return [
                    self._chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": self.tool_index,
                                    "id": block.get("id", ""),
                                    "type": "function",
                                    "function": {"name": block.get("name", ""), "arguments": ""},
                                }
                            ]
                        }
                    )
                ]
            return []
        if kind == "content_block_delta":
            delta = obj.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                piece = delta.get("text", "")
                out = {"content": piece}
            elif dtype == "thinking_delta":
                piece = delta.get("thinking", "")
                out = {"reasoning_content": piece}
            elif dtype == "input_json_delta":
                piece = delta.get("partial_json", "")
                out = {"tool_calls": [{"index": max(self.tool_index, 0), "function": {"arguments": piece}}]}
            else:
                return []  # signature_delta: nothing the OpenAI format can carry
            self.text_parts.append(piece)
            self.first_output = True
            return [self._chunk(out)]
        if kind == "message_delta":
            self.usage = claude_usage(obj.get("usage"), self.usage)
            stop = (obj.get("delta") or {}).get("stop_reason")
            self.finish_reason = STOP_REASONS.get(stop, stop)
            return [self._chunk({}, self.finish_reason or "stop")]
        if kind == "error":
            err = claude_error(obj)
            return [
                frame(
                    orjson.dumps(
                        {"error": {"message": err.message, "type": err.type, "code": "stream_response_error"}}
                    )
                )
            ]
        return []  # ping, content_block_stop, message_stop

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        usage = self.usage or self.ctx.extra.get("final_usage")
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
                            "usage": openai_usage_body(usage),
                        }
                    )
                )
            )
        out.append(DONE)
        return out


class ClaudeNativeStream(StreamTranslator):
    """/v1/messages on a Claude channel: re-emit every event verbatim, track usage."""

    def feed(self, event: str, data: bytes) -> list[bytes]:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return [frame_event(event or "message", data)]
        kind = (obj.get("type") if isinstance(obj, dict) else None) or event or "message"
        if kind == "message_start":
            self.usage = claude_usage((obj.get("message") or {}).get("usage"), self.usage)
        elif kind == "message_delta":
            self.usage = claude_usage(obj.get("usage"), self.usage)
        elif kind == "content_block_delta":
            delta = obj.get("delta") or {}
            piece = delta.get("text") or delta.get("thinking") or delta.get("partial_json") or ""
            if piece:
                self.text_parts.append(piece)
                self.first_output = True
        elif kind == "content_block_start" and (obj.get("content_block") or {}).get("type") == "tool_use":
            self.tool_calls += 1
            self.first_output = True
        return [frame_event(kind, data)]

    def finish(self) -> list[bytes]:
        return []


class ClaudeAdaptor(Adaptor):
    """Also NativeClaude: /v1/messages goes through as is."""

    name = "claude"

    def url(self, ctx: RelayContext) -> str:
        return self.base_url(ctx.channel) + "/v1/messages"

    # OpenAI chat → Claude
    def build_request(self, ctx: RelayContext) -> UpstreamRequest:
        if ctx.mode != "chat":
            raise LocalError(
                f"{ctx.mode} is not supported by Anthropic channels",
                status=400,
                type="invalid_request_error",
                code="invalid_api_type",
            )
        body = dict(ctx.body)
        model = ctx.upstream_model
        claude = openai_to_claude(body, model, ctx.options)
        claude["model"] = apply_thinking_suffix(claude, model, ctx.options)
        ctx.extra.setdefault("created", _now())
        return UpstreamRequest("POST", self.url(ctx), claude_headers(ctx), orjson.dumps(claude))

    def parse_response(
        self, ctx: RelayContext, status: int, body: bytes, content_type: str
    ) -> ParsedResponse:
        data = _json(body)
        if status // 100 != 2 or data is None:
            raise upstream_error_from_response(status if status // 100 != 2 else 500, body)
        if data.get("type") == "error":
            raise claude_error(data)
        out, usage = claude_to_openai(data, ctx.origin_model, int(ctx.extra.get("created") or _now()))
        text = out["choices"][0]["message"].get("content") or ""
        return ParsedResponse(status, orjson.dumps(out), usage, "application/json", text)

    def stream_translator(self, ctx: RelayContext) -> StreamTranslator:
        return ClaudeToOpenAIStream(ctx)

    # native /v1/messages
    def build_native_request(self, ctx: RelayContext) -> UpstreamRequest:
        body = dict(ctx.body)
        body["model"] = apply_thinking_suffix(body, ctx.upstream_model, ctx.options)
        if not body.get("max_tokens"):
            body["max_tokens"] = default_max_tokens(ctx.options, body["model"])
        return UpstreamRequest("POST", self._native_url(ctx, ""), claude_headers(ctx), orjson.dumps(body))

    def build_count_tokens_request(self, ctx: RelayContext) -> UpstreamRequest:
        """/v1/messages/count_tokens as is (the request shape of /v1/messages, minus max_tokens)."""
        body = dict(ctx.body)
        body["model"] = ctx.upstream_model.removesuffix("-thinking")
        body.pop("stream", None)
        body.pop("max_tokens", None)
        headers = claude_headers(ctx)
        headers.pop("Accept", None)
        return UpstreamRequest("POST", self._native_url(ctx, "/count_tokens"), headers, orjson.dumps(body))

    def _native_url(self, ctx: RelayContext, suffix: str) -> str:
        # Claude Code asks with ?beta=true (the SDK's beta client); that flag, and nothing else of
        # the client's query, goes along.
        url = self.url(ctx) + suffix
        return f"{url}?beta=true" if "beta=true" in ctx.query.split("&") else url

    def parse_native(self, ctx: RelayContext, status: int, body: bytes) -> ParsedResponse:
        data = _json(body)
        if status // 100 != 2 or data is None:
            raise upstream_error_from_response(status if status // 100 != 2 else 500, body)
        if data.get("type") == "error":
            raise claude_error(data)
        text = "".join(b.get("text", "") for b in data.get("content") or [] if isinstance(b, dict))
        return ParsedResponse(status, body, claude_usage(data.get("usage")), "application/json", text)

    def native_stream_translator(self, ctx: RelayContext) -> StreamTranslator:
        return ClaudeNativeStream(ctx)


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _now() -> int:
    return int(time.time())
