"""Scripted coding-agent upstreams on 127.0.0.1: one speaks Anthropic Messages, one OpenAI chat.

Both play the same two-turn script, the way a model drives a tool-using client such as Claude Code:
- a request that offers the tool named `tool` (default "Bash") and carries no tool result yet is
  answered with one call of that tool (`tool_input`);
- a request that carries a tool result is answered with the final text "Tool said: <first line of the result>";
- anything else (a client's side requests: titles, quota probes) gets the text "ok".
Requests that ask for thinking (Anthropic `thinking`, OpenAI `reasoning_effort`) get a thinking
block / reasoning_content first. Usage carries cache reads and writes so that cache billing can be
checked to the token. `POST /v1/messages/count_tokens` answers {"input_tokens": COUNT_TOKENS}.
Every request (HEAD and GET probes included) is recorded with its method, path, query and headers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer

COUNT_TOKENS = 4242
THOUGHT = "Let me run it."
SIGNATURE = "sig-fake"


@dataclass
class AgentRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            _text_of(b.get("text") if b.get("type") == "text" else b.get("content"))
            for b in content
            if isinstance(b, dict)
        )
    return ""


def tool_result_text(body: dict[str, Any]) -> str | None:
    """The latest tool result in a request (either format), or None when it carries none."""
    found: str | None = None
    for msg in body.get("messages") or []:
        if msg.get("role") == "tool":
            found = _text_of(msg.get("content"))
        elif isinstance(msg.get("content"), list):
            for block in msg["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    found = _text_of(block.get("content"))
    return found


def tool_names(body: dict[str, Any]) -> list[str]:
    names = []
    for tool in body.get("tools") or []:
        names.append(tool.get("name") or (tool.get("function") or {}).get("name") or "")
    return names


@dataclass
class _Scripted(ThreadedServer):
    host: str = "127.0.0.1"
    port: int = 0
    tool: str = "Bash"
    tool_input: dict[str, Any] = field(
        default_factory=lambda: {"command": "echo tool-ran-fine", "description": "Print a marker"}
    )
    input_tokens: int = 100
    output_tokens: int = 20
    cache_read: int = 60
    cache_write: int = 30
    requests: list[AgentRequest] = field(default_factory=list)

    def script(self, body: dict[str, Any]) -> tuple[str, str]:
        """("tool_use" | "text", text) for this request."""
        result = tool_result_text(body)
        if result is not None:
            return "text", f"Tool said: {(result.strip().splitlines() or [''])[0]}"
        if self.tool in tool_names(body):
            return "tool_use", ""
        return "text", "ok"

    def messages_requests(self) -> list[AgentRequest]:
        return [
            r
            for r in self.requests
            if r.method == "POST"
            and isinstance(r.body, dict)
            and "messages" in r.body
            and not r.path.endswith("count_tokens")
        ]

    async def _record(self, request: web.Request) -> AgentRequest:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        rec = AgentRequest(request.method, request.path, request.query_string, dict(request.headers), body)
        self.requests.append(rec)
        return rec


@dataclass
class ScriptedClaude(_Scripted):
    """Anthropic Messages (x-api-key)."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request)
        if request.method == "POST" and request.path == "/v1/messages/count_tokens":
            return web.json_response({"input_tokens": COUNT_TOKENS})
        if request.method != "POST" or request.path != "/v1/messages" or not isinstance(rec.body, dict):
            return web.json_response(
                {"type": "error", "error": {"type": "not_found_error", "message": "not found"}}, status=404
            )
        body = rec.body
        kind, text = self.script(body)
        blocks: list[dict[str, Any]] = []
        if body.get("thinking", {}).get("type") == "enabled":
            blocks.append({"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE})
        if kind == "tool_use":
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{len(self.requests):04d}",
                    "name": self.tool,
                    "input": self.tool_input,
                }
            )
        else:
            blocks.append({"type": "text", "text": text})
        usage = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation_input_tokens": self.cache_write,
        }
        msg = {
            "id": f"msg_{time.time_ns()}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", ""),
            "content": blocks,
            "stop_reason": "tool_use" if kind == "tool_use" else "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            return web.json_response(msg)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def emit(data: dict[str, Any]) -> None:
            await response.write(f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode())

        await emit(
            {
                "type": "message_start",
                "message": {
                    **msg,
                    "content": [],
                    "stop_reason": None,
                    "usage": {**usage, "output_tokens": 1},
                },
            }
        )
        await emit({"type": "ping"})
        for i, block in enumerate(blocks):
            if block["type"] == "thinking":
                await emit(
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "thinking", "thinking": ""},
                    }
                )
                await emit(
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "thinking_delta", "thinking": THOUGHT},
                    }
                )
                await emit(
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "signature_delta", "signature": SIGNATURE},
                    }
                )
            elif block["type"] == "tool_use":
                await emit(
                    {"type": "content_block_start", "index": i, "content_block": {**block, "input": {}}}
                )
                args = json.dumps(block["input"])
                for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                    await emit(
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "input_json_delta", "partial_json": piece},
                        }
                    )
            else:
                await emit(
                    {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}
                )
                words = block["text"].split(" ")
                for j, word in enumerate(words):
                    piece = word if j == 0 else " " + word
                    await emit(
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "text_delta", "text": piece},
                        }
                    )
            await emit({"type": "content_block_stop", "index": i})
        await emit(
            {
                "type": "message_delta",
                "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": self.output_tokens},
            }
        )
        await emit({"type": "message_stop"})
        await response.write_eof()
        return response


@dataclass
class ScriptedOpenAI(_Scripted):
    """OpenAI chat completions (Bearer). Usage: prompt_tokens includes the cached ones, as OpenAI counts."""

    cache_writes: bool = False  # report cache writes too, as OpenRouter does (cache_write_tokens)

    def usage(self) -> dict[str, Any]:
        details = {"cached_tokens": self.cache_read}
        prompt = self.input_tokens + self.cache_read
        if self.cache_writes:
            details["cache_write_tokens"] = self.cache_write
            prompt += self.cache_write
        return {
            "prompt_tokens": prompt,
            "completion_tokens": self.output_tokens,
            "total_tokens": prompt + self.output_tokens,
            "prompt_tokens_details": details,
        }

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request)
        if (
            request.method != "POST"
            or not request.path.endswith("/chat/completions")
            or not isinstance(rec.body, dict)
        ):
            return web.json_response(
                {"error": {"message": "not found", "type": "invalid_request_error"}}, status=404
            )
        body = rec.body
        kind, text = self.script(body)
        reasoning = THOUGHT if body.get("reasoning_effort") else ""
        call = {
            "id": f"call_{len(self.requests):04d}",
            "type": "function",
            "function": {"name": self.tool, "arguments": json.dumps(self.tool_input)},
        }
        finish = "tool_calls" if kind == "tool_use" else "stop"
        base = {
            "id": f"chatcmpl-{time.time_ns()}",
            "created": int(time.time()),
            "model": body.get("model", ""),
        }
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if kind == "tool_use" else text}
            if reasoning:
                message["reasoning_content"] = reasoning
            if kind == "tool_use":
                message["tool_calls"] = [call]
            return web.json_response(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": self.usage(),
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base["object"] = "chat.completion.chunk"

        async def emit(delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any) -> None:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
            await response.write(f"data: {json.dumps({**base, 'choices': choices, **extra})}\n\n".encode())

        await emit({"role": "assistant", "content": ""})
        if reasoning:
            await emit({"reasoning_content": reasoning})
        if kind == "tool_use":
            args = call["function"]["arguments"]
            await emit(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": self.tool, "arguments": ""},
                        }
                    ]
                }
            )
            for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                await emit({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        else:
            for j, word in enumerate(text.split(" ")):
                await emit({"content": word if j == 0 else " " + word})
        await emit({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            await emit(None, usage=self.usage())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
