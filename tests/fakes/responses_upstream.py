"""A fake OpenAI on 127.0.0.1 serving the Responses API natively and chat completions, shaped after
platform.openai.com's reference (aiohttp in a thread).

Behaviour by the channel key (`Authorization: Bearer <key>`):
- any key: text "Hello from Responses!" (chat: "Hello from chat!"); Responses usage input 12 / output 6
  (reasoning 2), chat usage prompt 20 / completion 7;
- `cache`: the same with 8 cached input tokens (chat: 4);
- `tools`: a call of the request's first function tool — a shell-like tool gets a command that echoes
  `codex-tool-ok` — until the input carries its output, then text "Tool said: <output>";
- `search`: a web_search_call item before the text (Responses only);
- `status-<code>`: that status with OpenAI's error body.
Responses are kept by id for GET/DELETE/input_items/cancel. Every request is recorded in `requests`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer


@dataclass
class Seen:
    method: str
    path: str
    key: str
    headers: dict[str, str]
    body: Any


def _tool_args(tool: dict[str, Any]) -> dict[str, Any]:
    name = str(tool.get("name") or (tool.get("function") or {}).get("name") or "")
    params = tool.get("parameters") or (tool.get("function") or {}).get("parameters") or {}
    props = params.get("properties") or {}
    if "shell" in name or "exec" in name or "command" in props or "cmd" in props:
        field_name = "command" if "command" in props or "cmd" not in props else "cmd"
        kind = (props.get(field_name) or {}).get("type")
        return {field_name: ["echo", "codex-tool-ok"] if kind == "array" else "echo codex-tool-ok"}
    return {"city": "Paris"}


def _tool_output(items: list[Any]) -> str | None:
    for item in items:
        if isinstance(item, dict) and item.get("type") in ("function_call_output", "custom_tool_call_output"):
            out = item.get("output")
            return out if isinstance(out, str) else json.dumps(out)
        if isinstance(item, dict) and item.get("role") == "tool":
            return str(item.get("content"))
    return None


@dataclass
class FakeResponsesAPI(ThreadedServer):
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    count: int = 0

    def seen(self, path_part: str, method: str = "POST") -> list[Seen]:
        return [r for r in self.requests if path_part in r.path and r.method == method]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        key = request.headers.get("Authorization", "").removeprefix("Bearer ") or request.headers.get(
            "api-key", ""
        )
        self.requests.append(Seen(request.method, request.path, key, dict(request.headers), body))
        if key.startswith("status-"):
            status = int(key.split("-")[1])
            err = {"error": {"message": f"fake failure {status}", "type": "server_error", "code": None}}
            return web.json_response(err, status=status)
        path = request.path
        if path.endswith("/chat/completions"):
            return await self._chat(request, key, body or {})
        if path.endswith("/responses") and request.method == "POST":
            return await self._create(request, key, body or {})
        parts = path.split("/responses/", 1)[-1].split("/")
        found = self.stored.get(parts[0])
        if found is None:
            err = {
                "error": {
                    "message": f"No response found with id '{parts[0]}'.",
                    "type": "invalid_request_error",
                }
            }
            return web.json_response(err, status=404)
        if request.method == "DELETE":
            self.stored.pop(parts[0])
            return web.json_response({"id": parts[0], "object": "response.deleted", "deleted": True})
        if parts[1:] == ["input_items"]:
            return web.json_response({"object": "list", "data": found["_input"], "has_more": False})
        if parts[1:] == ["cancel"]:
            return web.json_response({**found["response"], "status": "cancelled"})
        return web.json_response(found["response"])

    # -- Responses ---------------------------------------------------------------------------
    async def _create(self, request: web.Request, key: str, body: dict[str, Any]) -> web.StreamResponse:
        self.count += 1
        rid = f"resp_fake{self.port}x{self.count:04d}"
        items = body.get("input") if isinstance(body.get("input"), list) else []
        output: list[dict[str, Any]] = []
        tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
        done = _tool_output(items)
        if key == "tools" and tools and done is None:
            tool = tools[0]
            output.append(
                {
                    "id": "fc_fake01",
                    "type": "function_call",
                    "status": "completed",
                    "call_id": "call_fake01",
                    "name": tool["name"],
                    "arguments": json.dumps(_tool_args(tool)),
                }
            )
        else:
            if key == "search":
                output.append({"id": "ws_fake01", "type": "web_search_call", "status": "completed"})
            text = f"Tool said: {done}" if done is not None else "Hello from Responses!"
            output.append(
                {
                    "id": "msg_fake01",
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            )
        usage = {
            "input_tokens": 12,
            "input_tokens_details": {"cached_tokens": 8 if key == "cache" else 0},
            "output_tokens": 6,
            "output_tokens_details": {"reasoning_tokens": 2},
            "total_tokens": 18,
        }
        response = {
            "id": rid,
            "object": "response",
            "created_at": 1700000000,
            "status": "completed",
            "model": body.get("model"),
            "output": output,
            "usage": usage,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "tools": body.get("tools") or [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "metadata": {},
            "text": {"format": {"type": "text"}},
        }
        self.stored[rid] = {"response": response, "_input": items, "key": key}
        if not body.get("stream"):
            return web.json_response(response)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        seq = 0

        async def send(kind: str, payload: dict[str, Any]) -> None:
            nonlocal seq
            data = json.dumps({"type": kind, "sequence_number": seq, **payload})
            seq += 1
            await resp.write(f"event: {kind}\ndata: {data}\n\n".encode())
            await asyncio.sleep(0)

        start = {**response, "status": "in_progress", "output": [], "usage": None}
        await send("response.created", {"response": start})
        await send("response.in_progress", {"response": start})
        for i, item in enumerate(output):
            if item["type"] == "message":
                text = item["content"][0]["text"]
                await send(
                    "response.output_item.added",
                    {"output_index": i, "item": {**item, "status": "in_progress", "content": []}},
                )
                ref = {"item_id": item["id"], "output_index": i, "content_index": 0}
                await send(
                    "response.content_part.added",
                    {**ref, "part": {"type": "output_text", "text": "", "annotations": []}},
                )
                for word in text.split(" "):
                    piece = word if word == text.split(" ")[0] else " " + word
                    await send("response.output_text.delta", {**ref, "delta": piece})
                await send("response.output_text.done", {**ref, "text": text})
                await send("response.content_part.done", {**ref, "part": item["content"][0]})
            elif item["type"] == "function_call":
                await send(
                    "response.output_item.added",
                    {"output_index": i, "item": {**item, "status": "in_progress", "arguments": ""}},
                )
                ref = {"item_id": item["id"], "output_index": i}
                await send("response.function_call_arguments.delta", {**ref, "delta": item["arguments"]})
                await send("response.function_call_arguments.done", {**ref, "arguments": item["arguments"]})
            else:
                await send(
                    "response.output_item.added",
                    {"output_index": i, "item": {**item, "status": "in_progress"}},
                )
            await send("response.output_item.done", {"output_index": i, "item": item})
        await send("response.completed", {"response": response})
        return resp

    # -- chat completions ---------------------------------------------------------------------
    async def _chat(self, request: web.Request, key: str, body: dict[str, Any]) -> web.StreamResponse:
        messages = body.get("messages") or []
        tools = body.get("tools") or []
        done = _tool_output(messages)
        message: dict[str, Any] = {"role": "assistant", "content": None}
        finish = "stop"
        if key == "tools" and tools and done is None:
            fn = tools[0]["function"]
            message["tool_calls"] = [
                {
                    "id": "call_chat01",
                    "type": "function",
                    "function": {"name": fn["name"], "arguments": json.dumps(_tool_args(tools[0]))},
                }
            ]
            finish = "tool_calls"
        else:
            message["content"] = f"Tool said: {done}" if done is not None else "Hello from chat!"
        usage = {
            "prompt_tokens": 20,
            "completion_tokens": 7,
            "total_tokens": 27,
            "prompt_tokens_details": {"cached_tokens": 4 if key == "cache" else 0},
        }
        base = {"id": "chatcmpl-fake", "created": 1700000000, "model": body.get("model")}
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": finish}
            return web.json_response(
                {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def chunk(
            delta: dict[str, Any], reason: str | None = None, use: dict[str, Any] | None = None
        ) -> None:
            obj = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": reason}] if use is None else [],
            }
            if use is not None:
                obj["usage"] = use
            await resp.write(f"data: {json.dumps(obj)}\n\n".encode())

        await chunk({"role": "assistant", "content": ""})
        if message.get("tool_calls"):
            call = message["tool_calls"][0]
            args = call["function"]["arguments"]
            await chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["function"]["name"], "arguments": ""},
                        }
                    ]
                }
            )
            for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                await chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        else:
            text = message["content"]
            for piece in (text[:5], text[5:]):
                await chunk({"content": piece})
        await chunk({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            await chunk({}, use=usage)
        await resp.write(b"data: [DONE]\n\n")
        return resp
