"""Gemini's native API ⇄ OpenAI chat completions and embeddings, for channels that do not speak Gemini.

Requests: contents/systemInstruction/tools/generationConfig become a chat completion (function calls
and responses paired by id, else by name in order); embedContent/batchEmbedContents become one
embeddings call. Answers: a chat completion (or its stream) becomes a GenerateContentResponse with
usageMetadata, reasoning as thought parts. Google's JSON accepts both camelCase and snake_case
field names, so both are read.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from relay.adaptors.base import RelayContext, StreamTranslator, Usage
from relay.adaptors.gemini import gemini_usage
from relay.adaptors.openai_stream import chunk_of, usage_from
from relay.errors import LocalError
from relay.streaming import frame

FINISH_TO_GEMINI = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "content_filter": "SAFETY",
}
TOOL_CHOICE = {"AUTO": "auto", "ANY": "required", "NONE": "none"}
SCHEMA_DEPTH = 32


def field(obj: Any, camel: str) -> Any:
    """obj[camel], or its snake_case spelling."""
    if not isinstance(obj, dict):
        return None
    if camel in obj:
        return obj[camel]
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return obj.get(snake)


def bad_request(message: str) -> LocalError:
    return LocalError(message, status=400, type="invalid_request_error", code="invalid_gemini_request")


def json_schema(schema: Any, depth: int = 0) -> Any:
    """Gemini's OpenAPI subset (upper-case types) as JSON Schema."""
    if depth > SCHEMA_DEPTH:
        return schema
    if isinstance(schema, list):
        return [json_schema(v, depth + 1) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out[key] = value.lower()
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {k: json_schema(v, depth + 1) for k, v in value.items()}
        elif key in ("items", "anyOf", "oneOf", "allOf", "not", "additionalProperties"):
            out[key] = json_schema(value, depth + 1)
        else:
            out[key] = value
    return out


def _text_of(content: Any) -> str:
    parts = field(content, "parts") if isinstance(content, dict) else None
    return "".join(str(p.get("text") or "") for p in parts or [] if isinstance(p, dict))


def _media_part(blob: dict[str, Any]) -> dict[str, Any]:
    mime = str(field(blob, "mimeType") or "application/octet-stream")
    data = str(blob.get("data") or "")
    if mime.startswith("audio/"):
        return {"type": "input_audio", "input_audio": {"data": data, "format": mime.split("/", 1)[1]}}
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}


class _CallIds:
    """Gemini pairs a functionResponse with its functionCall by id when there is one, else by name."""

    def __init__(self) -> None:
        self.by_name: dict[str, list[str]] = {}

    def issue(self, call: dict[str, Any]) -> str:
        call_id = str(call.get("id") or f"call_{uuid.uuid4().hex[:24]}")
        self.by_name.setdefault(str(call.get("name") or ""), []).append(call_id)
        return call_id

    def match(self, response: dict[str, Any]) -> str:
        waiting = self.by_name.get(str(response.get("name") or ""), [])
        if response.get("id"):
            call_id = str(response["id"])
            if call_id in waiting:
                waiting.remove(call_id)
            return call_id
        return waiting.pop(0) if waiting else f"call_{uuid.uuid4().hex[:24]}"


def _turn(content: dict[str, Any], ids: _CallIds) -> list[dict[str, Any]]:
    """One Gemini content (a turn) as OpenAI messages."""
    role = "assistant" if content.get("role") == "model" else "user"
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for part in field(content, "parts") or []:
        if not isinstance(part, dict):
            continue
        if part.get("thought"):
            continue  # the model's own reasoning is not sent back
        call = field(part, "functionCall")
        response = field(part, "functionResponse")
        blob = field(part, "inlineData")
        file = field(part, "fileData")
        if isinstance(call, dict):
            calls.append(
                {
                    "id": ids.issue(call),
                    "type": "function",
                    "function": {
                        "name": str(call.get("name") or ""),
                        "arguments": orjson.dumps(call.get("args") or {}).decode(),
                    },
                }
            )
        elif isinstance(response, dict):
            results.append(
                {
                    "role": "tool",
                    "tool_call_id": ids.match(response),
                    "name": str(response.get("name") or ""),
                    "content": orjson.dumps(response.get("response") or {}).decode(),
                }
            )
        elif isinstance(blob, dict):
            parts.append(_media_part(blob))
        elif isinstance(file, dict):
            parts.append({"type": "image_url", "image_url": {"url": str(field(file, "fileUri") or "")}})
        elif "text" in part:
            parts.append({"type": "text", "text": str(part.get("text") or "")})
    messages: list[dict[str, Any]] = list(results)
    if not parts and not calls:
        return messages
    only_text = all(p["type"] == "text" for p in parts)
    body: Any = "".join(p["text"] for p in parts) if only_text else parts
    message: dict[str, Any] = {"role": role, "content": body if parts else None}
    if calls and role == "assistant":
        message["tool_calls"] = calls
    messages.append(message)
    return messages


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for tool in body.get("tools") or []:
        for decl in field(tool, "functionDeclarations") or []:
            if not isinstance(decl, dict):
                continue
            fn: dict[str, Any] = {"name": str(decl.get("name") or "")}
            if decl.get("description"):
                fn["description"] = decl["description"]
            params = field(decl, "parametersJsonSchema") or decl.get("parameters")
            fn["parameters"] = json_schema(params) if params else {"type": "object", "properties": {}}
            tools.append({"type": "function", "function": fn})
    return tools


def _tool_choice(body: dict[str, Any]) -> Any:
    config = field(field(body, "toolConfig"), "functionCallingConfig")
    if not isinstance(config, dict):
        return None
    choice = TOOL_CHOICE.get(str(config.get("mode") or "").upper())
    allowed = field(config, "allowedFunctionNames") or []
    if choice == "required" and len(allowed) == 1:
        return {"type": "function", "function": {"name": allowed[0]}}
    return choice


def _generation(config: Any, out: dict[str, Any]) -> None:
    if not isinstance(config, dict):
        return
    for camel, name in (
        ("temperature", "temperature"),
        ("topP", "top_p"),
        ("maxOutputTokens", "max_tokens"),
        ("candidateCount", "n"),
        ("seed", "seed"),
        ("presencePenalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty"),
    ):
        value = field(config, camel)
        if value is not None:
            out[name] = value
    stop = field(config, "stopSequences")
    if stop:
        out["stop"] = stop
    schema = field(config, "responseJsonSchema") or field(config, "responseSchema")
    if schema:
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": json_schema(schema)},
        }
    elif field(config, "responseMimeType") == "application/json":
        out["response_format"] = {"type": "json_object"}


def to_chat_request(body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    """A generateContent request as a chat completion."""
    messages: list[dict[str, Any]] = []
    system = _text_of(field(body, "systemInstruction"))
    if system:
        messages.append({"role": "system", "content": system})
    ids = _CallIds()
    for content in body.get("contents") or []:
        if isinstance(content, dict):
            messages.extend(_turn(content, ids))
    out: dict[str, Any] = {"model": model, "messages": messages}
    _generation(field(body, "generationConfig"), out)
    tools = _tools(body)
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body)
        if choice is not None:
            out["tool_choice"] = choice
    if stream:
        out["stream"] = True
    return out


def usage_metadata(usage: Usage | None) -> dict[str, Any]:
    if usage is None:
        return {}
    meta: dict[str, Any] = {
        "promptTokenCount": usage.prompt_tokens,
        "candidatesTokenCount": usage.completion_tokens - usage.reasoning_tokens,
        "totalTokenCount": usage.total,
    }
    if usage.cached_tokens:
        meta["cachedContentTokenCount"] = usage.cached_tokens
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    return meta


def _message_parts(msg: dict[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    reasoning = msg.get("reasoning_content") or msg.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        parts.append({"text": reasoning, "thought": True})
    content = msg.get("content")
    if isinstance(content, str) and content:
        parts.append({"text": content})
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") or {}
        parts.append(
            {"functionCall": {"id": call.get("id") or "", "name": fn.get("name", ""), "args": _args(fn)}}
        )
    return parts


def _args(fn: dict[str, Any]) -> Any:
    try:
        args = orjson.loads(fn.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        return {"arguments": fn.get("arguments")}
    return args if isinstance(args, dict) else {"value": args}


def to_gemini_response(data: dict[str, Any], model: str, usage: Usage | None) -> dict[str, Any]:
    candidates = []
    for i, choice in enumerate(data.get("choices") or []):
        parts = _message_parts(choice.get("message") or {})
        candidates.append(
            {
                "content": {"role": "model", "parts": parts or [{"text": ""}]},
                "finishReason": FINISH_TO_GEMINI.get(str(choice.get("finish_reason") or "stop"), "OTHER"),
                "index": int(choice.get("index") or i),
            }
        )
    out: dict[str, Any] = {"candidates": candidates, "usageMetadata": usage_metadata(usage)}
    out["modelVersion"] = model
    out["responseId"] = str(data.get("id") or uuid.uuid4().hex)
    return out


def embed_texts(action: str, body: dict[str, Any]) -> list[str]:
    """The texts of an embedContent or batchEmbedContents request."""
    if action == "batchEmbedContents":
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise bad_request("requests is required")
        return [_text_of(field(r, "content")) for r in requests]
    if not isinstance(field(body, "content"), dict):
        raise bad_request("content is required")
    return [_text_of(field(body, "content"))]


def to_embeddings_request(action: str, body: dict[str, Any], model: str) -> dict[str, Any]:
    texts = embed_texts(action, body)
    out: dict[str, Any] = {"model": model, "input": texts if action == "batchEmbedContents" else texts[0]}
    first = body["requests"][0] if action == "batchEmbedContents" else body
    dims = field(first, "outputDimensionality")
    if dims:
        out["dimensions"] = dims
    return out


def to_gemini_embeddings(action: str, data: dict[str, Any]) -> dict[str, Any]:
    vectors = [{"values": d.get("embedding") or []} for d in data.get("data") or [] if isinstance(d, dict)]
    if action == "batchEmbedContents":
        return {"embeddings": vectors}
    return {"embedding": vectors[0] if vectors else {"values": []}}


class GeminiFrames:
    """Writes a Gemini stream the way the client asked: SSE (`?alt=sse`), else one JSON array."""

    def __init__(self, sse: bool) -> None:
        self.sse = sse
        self.count = 0

    def event(self, data: bytes) -> bytes:
        self.count += 1
        if self.sse:
            return frame(data)
        return (b"[" if self.count == 1 else b",\r\n") + data

    def close(self) -> list[bytes]:
        if self.sse:
            return []
        return [b"]"] if self.count else [b"[]"]


class ChatToGeminiStream(StreamTranslator):
    """OpenAI chat completion chunks (from any channel's translator) as Gemini stream events.

    Text and reasoning leave as they come; tool calls are gathered (their arguments arrive in
    pieces) and leave with the finish reason and usage in the last event.
    """

    def __init__(self, ctx: RelayContext, inner: StreamTranslator, frames: GeminiFrames) -> None:
        super().__init__(ctx)
        self.inner = inner
        self.frames = frames
        self.text_parts = inner.text_parts  # billed from what the channel's translator saw
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish_reason = ""
        self.response_id = f"resp_{uuid.uuid4().hex[:24]}"

    def _event(self, parts: list[dict[str, Any]], finish: str = "", usage: Usage | None = None) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        obj: dict[str, Any] = {"candidates": [candidate]}
        if usage is not None:
            obj["usageMetadata"] = usage_metadata(usage)
        obj["modelVersion"] = self.ctx.origin_model
        obj["responseId"] = self.response_id
        return self.frames.event(orjson.dumps(obj))

    def _chunks(self, frames: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for raw in frames:
            for line in raw.split(b"\n"):
                if line.startswith(b"data:"):
                    out += self._chunk(line[5:].strip())
        return out

    def _chunk(self, data: bytes) -> list[bytes]:
        chunk = chunk_of(data)
        if chunk is None:
            return []
        if "error" in chunk and "choices" not in chunk:
            err = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            body = {"error": {"code": 500, "message": str(err.get("message") or ""), "status": "INTERNAL"}}
            return [self.frames.event(orjson.dumps(body))]
        usage = usage_from(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        out: list[bytes] = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            for call in delta.get("tool_calls") or []:
                slot = self.calls.setdefault(
                    int(call.get("index") or 0), {"id": "", "name": "", "arguments": ""}
                )
                fn = call.get("function") or {}
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
            parts = _message_parts({k: v for k, v in delta.items() if k != "tool_calls"})
            if parts:
                out.append(self._event(parts))
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return out

    def feed(self, event: str, data: bytes) -> list[bytes]:
        out = self._chunks(self.inner.feed(event, data))
        self.usage = self.inner.usage or self.usage
        self.tool_calls = self.inner.tool_calls
        self.first_output = self.inner.first_output
        return out

    def finish(self) -> list[bytes]:
        out = self._chunks(self.inner.finish())
        usage: Usage | None = self.usage or self.inner.usage or self.ctx.extra.get("final_usage")
        parts: list[dict[str, Any]] = [
            {"functionCall": {"id": c["id"], "name": c["name"], "args": _args(c)}}
            for _, c in sorted(self.calls.items())
        ]
        reason = FINISH_TO_GEMINI.get(self.finish_reason or "stop", "OTHER")
        out.append(self._event(parts or [{"text": ""}], reason, usage))
        return [*out, *self.frames.close()]


class NativeGeminiStream(StreamTranslator):
    """A Gemini channel's own stream, passed on event by event (re-framed as the client asked)."""

    def __init__(self, ctx: RelayContext, frames: GeminiFrames) -> None:
        super().__init__(ctx)
        self.frames = frames

    def feed(self, event: str, data: bytes) -> list[bytes]:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(obj, dict):
            return []
        usage = gemini_usage(obj.get("usageMetadata"))
        if usage is not None:
            self.usage = usage
        for cand in obj.get("candidates") or []:
            for part in field(cand.get("content"), "parts") or []:
                if not isinstance(part, dict):
                    continue
                call = field(part, "functionCall")
                if isinstance(call, dict):
                    self.tool_calls += 1
                    self.text_parts.append(
                        str(call.get("name") or "") + orjson.dumps(call.get("args")).decode()
                    )
                elif isinstance(part.get("text"), str) and part["text"]:
                    self.text_parts.append(part["text"])
                    self.first_output = True
        return [self.frames.event(data)]

    def finish(self) -> list[bytes]:
        return self.frames.close()


GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def google_error(status: int, message: str) -> dict[str, Any]:
    """Google's error body: {"error": {"code", "message", "status"}}."""
    name = GOOGLE_STATUS.get(status) or ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    return {"error": {"code": status, "message": message, "status": name}}
