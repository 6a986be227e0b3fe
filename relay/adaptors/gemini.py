"""Google Gemini: OpenAI chat ⇄ generateContent, embeddings via batchEmbedContents.

Text parts are joined as they come (New API inserted newlines between parts), thought parts become
reasoning_content, every input of an embeddings request is embedded (New API sent only the first).
Image parts must be data URIs: the adaptor does no I/O, and remote URLs are refused with a 400.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from django.conf import settings

from relay.adaptors.base import (
    Adaptor,
    OptionReader,
    ParsedResponse,
    RelayContext,
    StreamTranslator,
    UpstreamRequest,
    Usage,
)
from relay.errors import LocalError, UpstreamError, upstream_error_from_response
from relay.streaming import DONE, frame
from relay.upstream.safe_paths import check_url_segment

CATEGORIES = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
)
FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
DROP_SCHEMA_KEYS = {
    "default",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "additionalProperties",
    "title",
    "$schema",
}


def version_for(options: OptionReader, model: str) -> str:
    """The option's entry for the model, else GEMINI_MODEL_MAP's (`model:version,…`), else the
    option's default, else v1beta."""
    table = options.get_json("gemini.version_settings", {}) or {}
    return str(
        table.get(model) or settings.GEMINI_MODEL_VERSIONS.get(model) or table.get("default") or "v1beta"
    )


def safety_settings(options: OptionReader) -> list[dict[str, str]]:
    table = options.get_json("gemini.safety_settings", {}) or {}
    return [
        {"category": c, "threshold": str(table.get(c) or table.get("default") or "OFF")} for c in CATEGORIES
    ]


def clean_schema(schema: Any, depth: int = 0) -> Any:
    if depth > 16 or not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in DROP_SCHEMA_KEYS:
            continue
        if key == "format" and schema.get("type") == "string" and value not in ("enum", "date-time"):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: clean_schema(v, depth + 1) for k, v in value.items()}
        elif key == "items":
            out[key] = clean_schema(value, depth + 1)
        elif key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
            out[key] = [clean_schema(v, depth + 1) for v in value]
        else:
            out[key] = value
    if out.get("type") == "object" and not out.get("properties"):
        out.pop("properties", None)
        out.pop("required", None)
    return out


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    images = 0
    cap = settings.GEMINI_VISION_MAX_IMAGE_NUM  # per message; -1: no cap
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": part.get("text", "")})
        elif kind == "image_url":
            images += 1
            if cap != -1 and images > cap:
                continue  # images beyond the cap are left out; the rest of the message still goes
            url = part.get("image_url")
            url = url.get("url", "") if isinstance(url, dict) else str(url or "")
            if not (url.startswith("data:") and ";base64," in url):
                raise LocalError(
                    "Gemini channels need images as base64 data URIs",
                    status=400,
                    type="invalid_request_error",
                    code="convert_request_failed",
                )
            media, data = url[5:].split(";base64,", 1)
            parts.append({"inlineData": {"mimeType": media, "data": data}})
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            parts.append(
                {
                    "inlineData": {
                        "mimeType": f"audio/{audio.get('format', 'wav')}",
                        "data": audio.get("data", ""),
                    }
                }
            )
    return parts


def openai_to_gemini(body: dict[str, Any], options: OptionReader) -> dict[str, Any]:
    contents: list[dict[str, Any]] = []
    system: list[str] = []
    call_names: dict[str, str] = {}
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        if role in ("system", "developer"):
            system.extend(p["text"] for p in _parts(msg.get("content")) if "text" in p)
            continue
        if role in ("tool", "function"):
            name = msg.get("name") or call_names.get(msg.get("tool_call_id", ""), "")
            raw = msg.get("content")
            raw = (
                raw
                if isinstance(raw, str)
                else "".join(p.get("text", "") for p in raw or [] if isinstance(p, dict))
            )
            try:
                response = orjson.loads(raw)
            except orjson.JSONDecodeError:
                response = raw
            if not isinstance(response, dict):
                response = {"content": response}
            part = {"functionResponse": {"name": name, "response": response}}
            if (
                contents
                and contents[-1]["role"] == "user"
                and "functionResponse" in contents[-1]["parts"][-1]
            ):
                contents[-1]["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
            continue
        parts = _parts(msg.get("content"))
        if role == "assistant":
            for call in msg.get("tool_calls") or []:
                fn = call.get("function") or {}
                call_names[call.get("id", "")] = fn.get("name", "")
                try:
                    args = orjson.loads(fn.get("arguments") or "{}")
                except orjson.JSONDecodeError:
                    raise LocalError(
                        "tool call arguments are not valid JSON",
                        status=400,
                        type="invalid_request_error",
                        code="convert_request_failed",
                    ) from None
                parts.append({"functionCall": {"name": fn.get("name", ""), "args": args}})
        if parts:
            contents.append({"role": "model" if role == "assistant" else "user", "parts": parts})
    out: dict[str, Any] = {"contents": contents, "safetySettings": safety_settings(options)}
    if system:
        out["systemInstruction"] = {"parts": [{"text": "\n".join(system)}]}
    config: dict[str, Any] = {}
    for src, dst in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK"), ("seed", "seed")):
        if body.get(src) is not None:
            config[dst] = body[src]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        config["maxOutputTokens"] = max_tokens
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = body.get("response_format") or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema:
            config["responseSchema"] = clean_schema(schema)
    if config:
        out["generationConfig"] = config
    tools: list[dict[str, Any]] = []
    declarations: list[dict[str, Any]] = []
    for tool in body.get("tools") or []:
        fn = tool.get("function") or {}
        name = fn.get("name", "")
        if name == "googleSearch":
            tools.append({"googleSearch": {}})
        elif name == "codeExecution":
            tools.append({"codeExecution": {}})
        else:
            decl: dict[str, Any] = {"name": name, "description": fn.get("description", "")}
            params = clean_schema(fn.get("parameters"))
            if isinstance(params, dict) and params.get("properties"):
                decl["parameters"] = params
            declarations.append(decl)
    if declarations:
        tools.append({"functionDeclarations": declarations})
    if tools:
        out["tools"] = tools
    return out


def gemini_usage(meta: Any) -> Usage | None:
    if not isinstance(meta, dict) or not meta.get("totalTokenCount"):
        return None
    completion = int(meta.get("candidatesTokenCount") or 0) + int(meta.get("thoughtsTokenCount") or 0)
    return Usage(
        int(meta.get("promptTokenCount") or 0),
        completion,
        int(meta.get("cachedContentTokenCount") or 0),
        0,
        int(meta.get("thoughtsTokenCount") or 0),
    )


def candidate_delta(cand: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """One candidate → (OpenAI message/delta, finish_reason)."""
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (cand.get("content") or {}).get("parts") or []:
        if "functionCall" in part:
            fc = part["functionCall"]
            calls.append(
                {
                    "index": len(calls),
                    "id": f"call_{uuid.uuid4().hex}",
                    "type": "function",
                    "function": {
                        "name": fc.get("name", ""),
                        "arguments": orjson.dumps(fc.get("args") or {}).decode(),
                    },
                }
            )
        elif "executableCode" in part:
            code = part["executableCode"]
            text.append(f"```{str(code.get('language', '')).lower()}\n{code.get('code', '')}\n```\n")
        elif "codeExecutionResult" in part:
            text.append(f"```output\n{part['codeExecutionResult'].get('output', '')}\n```\n")
        elif part.get("thought"):
            thoughts.append(part.get("text", ""))
        elif "text" in part:
            text.append(part["text"])
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(text)}
    if thoughts:
        msg["reasoning_content"] = "".join(thoughts)
    if calls:
        msg["tool_calls"] = calls
    reason = cand.get("finishReason")
    finish = "tool_calls" if calls and reason else (FINISH.get(reason, "content_filter") if reason else None)
    return msg, finish


def native_url(url: str, action: str, query: str) -> str:
    """A native call's URL: streams always as SSE (the mode re-frames them as the client asked)."""
    params = [query] if query else []
    if action == "streamGenerateContent":
        params.append("alt=sse")
    return f"{url}?{'&'.join(params)}" if params else url


class GeminiStream(StreamTranslator):
    def __init__(self, ctx: RelayContext) -> None:
        super().__init__(ctx)
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.ctx.origin_model,
            "choices": choices,
        }
        if usage is not None:
            obj["usage"] = usage
        return frame(orjson.dumps(obj))

    def feed(self, event: str, data: bytes) -> list[bytes]:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(obj, dict):
            return []
        if isinstance(obj.get("error"), dict):
            err = obj["error"]
            return [
                frame(
                    orjson.dumps(
                        {
                            "error": {
                                "message": err.get("message", ""),
                                "type": str(err.get("status") or "upstream_error"),
                                "code": "stream_response_error",
                            }
                        }
                    )
                )
            ]
        usage = gemini_usage(obj.get("usageMetadata"))
        if usage is not None:
            self.usage = usage
        choices = []
        for i, cand in enumerate(obj.get("candidates") or []):
            msg, finish = candidate_delta(cand)
            msg.pop("role", None)
            if not msg.get("content"):
                msg.pop("content", None)
            piece = (msg.get("content") or "") + (msg.get("reasoning_content") or "")
            for call in msg.get("tool_calls") or []:
                piece += call["function"]["name"] + call["function"]["arguments"]
                self.tool_calls += 1
            if piece:
                self.text_parts.append(piece)
                self.first_output = True
            choices.append({"index": int(cand.get("index") or i), "delta": msg, "finish_reason": finish})
        return [self._chunk(choices)] if choices else []

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        usage = self.usage or self.ctx.extra.get("final_usage")
        if self.ctx.client_wants_usage and usage is not None:
            out.append(
                self._chunk(
                    [],
                    {
                        "prompt_tokens": usage.prompt_tokens,
                        "completion_tokens": usage.completion_tokens,
                        "total_tokens": usage.total,
                    },
                )
            )
        out.append(DONE)
        return out


class GeminiAdaptor(Adaptor):
    name = "gemini"

    def build_request(self, ctx: RelayContext) -> UpstreamRequest:
        model = check_url_segment(ctx.upstream_model)
        base = f"{self.base_url(ctx.channel)}/{version_for(ctx.options, model)}/models/{model}"
        headers = {"x-goog-api-key": ctx.channel.key, "Content-Type": "application/json"}
        if ctx.mode == "embeddings":
            inputs = ctx.body.get("input")
            items = inputs if isinstance(inputs, list) else [inputs]
            requests = []
            for item in items:
                req: dict[str, Any] = {
                    "model": f"models/{model}",
                    "content": {"parts": [{"text": str(item)}]},
                }
                if ctx.body.get("dimensions"):
                    req["outputDimensionality"] = ctx.body["dimensions"]
                requests.append(req)
            return UpstreamRequest(
                "POST", f"{base}:batchEmbedContents", headers, orjson.dumps({"requests": requests})
            )
        if ctx.mode != "chat":
            raise LocalError(
                f"{ctx.mode} is not supported by Gemini channels",
                status=400,
                type="invalid_request_error",
                code="invalid_api_type",
            )
        body = openai_to_gemini(ctx.body, ctx.options)
        if ctx.is_stream:
            return UpstreamRequest(
                "POST", f"{base}:streamGenerateContent?alt=sse", headers, orjson.dumps(body)
            )
        return UpstreamRequest("POST", f"{base}:generateContent", headers, orjson.dumps(body))

    def build_gemini_request(self, ctx: RelayContext, action: str) -> UpstreamRequest:
        """Gemini's own API, as is (NativeGemini): the client's body to the channel's model and version."""
        model = check_url_segment(ctx.upstream_model)
        url = f"{self.base_url(ctx.channel)}/{version_for(ctx.options, model)}/models/{model}:{action}"
        headers = {"x-goog-api-key": ctx.channel.key, "Content-Type": "application/json"}
        return UpstreamRequest("POST", native_url(url, action, ctx.query), headers, ctx.raw_body)

    def parse_response(
        self, ctx: RelayContext, status: int, body: bytes, content_type: str
    ) -> ParsedResponse:
        if status // 100 != 2:
            raise upstream_error_from_response(status, body)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                "invalid Gemini response",
                status=500,
                type="upstream_error",
                code="unmarshal_response_body_failed",
            ) from None
        if ctx.mode == "embeddings":
            vectors = [e.get("values") or [] for e in data.get("embeddings") or []]
            out: dict[str, Any] = {
                "object": "list",
                "model": ctx.origin_model,
                "data": [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vectors)],
            }
            return ParsedResponse(status, orjson.dumps(out), None, "application/json")
        candidates = data.get("candidates") or []
        if not candidates:
            raise UpstreamError(
                "No candidates returned", status=500, type="server_error", code=500, upstream_body=body
            )
        choices: list[dict[str, Any]] = []
        for i, cand in enumerate(candidates):
            msg, finish = candidate_delta(cand)
            for call in msg.get("tool_calls") or []:
                call.pop("index", None)
            choices.append(
                {"index": int(cand.get("index") or i), "message": msg, "finish_reason": finish or "stop"}
            )
        usage = gemini_usage(data.get("usageMetadata"))
        out = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": ctx.origin_model,
            "choices": choices,
        }
        if usage is not None:
            out["usage"] = {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total,
            }
        text = "".join((c["message"].get("content") or "") for c in choices)
        return ParsedResponse(status, orjson.dumps(out), usage, "application/json", text)

    def stream_translator(self, ctx: RelayContext) -> StreamTranslator:
        return GeminiStream(ctx)
