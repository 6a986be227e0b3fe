"""OpenAI (type 1) and the OpenAI-compatible family: the base most providers are declared on.

The request body is forwarded byte for byte unless something in it must change (model
mapping, forced stream usage, o-series rules, param_override); SSE chunks are forwarded
without re-encoding.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings

from relay.adaptors.base import (
    Adaptor,
    ParsedResponse,
    RelayContext,
    StreamTranslator,
    UpstreamRequest,
    Usage,
)
from relay.errors import upstream_error_from_response
from relay.streaming import DONE, frame


def usage_from(obj: Any) -> Usage | None:
    if not isinstance(obj, dict):
        return None
    prompt = int(obj.get("prompt_tokens") or obj.get("input_tokens") or 0)
    completion = int(obj.get("completion_tokens") or obj.get("output_tokens") or 0)
    if prompt == 0 and completion == 0:
        return None
    details = obj.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or obj.get("prompt_cache_hit_tokens") or 0)
    creation = int(details.get("cache_creation_tokens") or 0)
    reasoning = int((obj.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    return Usage(prompt, completion, cached, creation, reasoning)


def choice_text(choice: dict[str, Any]) -> str:
    """Model output inside one choice (message or delta): content, reasoning and tool arguments."""
    msg = choice.get("delta") or choice.get("message") or {}
    parts: list[str] = []
    for key in ("content", "reasoning_content", "reasoning"):
        value = msg.get(key)
        if isinstance(value, str):
            parts.append(value)
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") or {}
        parts.append(str(fn.get("name") or "") + str(fn.get("arguments") or ""))
    if isinstance(choice.get("text"), str):  # legacy completions
        parts.append(choice["text"])
    return "".join(parts)


REASONING_EFFORTS = ("high", "medium", "low")


def split_reasoning_effort(ctx: RelayContext, body: dict[str, Any]) -> None:
    """`o3-mini-high` → model o3-mini + reasoning_effort high (relay.md §5.3); pricing keeps the suffixed name."""
    model = ctx.upstream_model
    for effort in REASONING_EFFORTS:
        if model.endswith("-" + effort):
            ctx.upstream_model = model.removesuffix("-" + effort)
            body["model"] = ctx.upstream_model
            body["reasoning_effort"] = effort
            ctx.extra["reasoning_effort"] = effort
            ctx.body_changed = True
            return


class OpenAIStreamTranslator(StreamTranslator):
    def feed(self, event: str, data: bytes) -> list[bytes]:
        if data.startswith(b"[DONE]"):
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(chunk, dict):
            return []
        if "error" in chunk and "choices" not in chunk:
            # an error event mid-stream: pass it on, bill only what came before
            return [frame(data)]
        usage = usage_from(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        choices = chunk.get("choices") or []
        for choice in choices:
            text = choice_text(choice)
            if text:
                self.text_parts.append(text)
                self.first_output = True
            calls = (choice.get("delta") or {}).get("tool_calls") or []
            self.tool_calls = max(self.tool_calls, len(calls))
        if not choices and usage is not None and not self.ctx.client_wants_usage:
            return []  # the usage chunk we forced: the client did not ask for it
        if usage is not None and not self.ctx.client_wants_usage:
            chunk.pop("usage", None)
            return [frame(orjson.dumps(chunk))]
        return [frame(data)]

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        if self.ctx.client_wants_usage and self.usage is None and self.ctx.extra.get("final_usage"):
            usage: Usage = self.ctx.extra["final_usage"]
            out.append(
                frame(
                    orjson.dumps(
                        {
                            "id": self.ctx.extra.get("request_id", ""),
                            "object": "chat.completion.chunk",
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


class OpenAIAdaptor(Adaptor):
    name = "openai"
    default_base_url = "https://api.openai.com"
    supports_stream_options = True

    def request_url(self, ctx: RelayContext) -> str:
        url = self.base_url(ctx.channel) + ctx.path
        return f"{url}?{ctx.query}" if ctx.query else url

    def request_headers(self, ctx: RelayContext) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {ctx.channel.key}",
            "Content-Type": ctx.client_headers.get("content-type", "application/json"),
        }
        accept = ctx.client_headers.get("accept")
        if ctx.is_stream:
            headers["Accept"] = accept or "text/event-stream"
        elif accept:
            headers["Accept"] = accept
        if ctx.channel.organization:
            headers["OpenAI-Organization"] = ctx.channel.organization
        return headers

    def convert_body(self, ctx: RelayContext) -> dict[str, Any]:
        """Apply the changes this provider needs to the parsed body (in place); mark if changed."""
        body = ctx.body
        if body.get("model") != ctx.upstream_model and "model" in body:
            body["model"] = ctx.upstream_model
            ctx.body_changed = True
        if ctx.is_stream and ctx.mode in ("chat", "completions"):
            if self.supports_stream_options and settings.FORCE_STREAM_OPTION:
                opts = body.get("stream_options") or {}
                if not opts.get("include_usage"):
                    body["stream_options"] = {**opts, "include_usage": True}
                    ctx.body_changed = True
            elif not self.supports_stream_options and "stream_options" in body:
                body.pop("stream_options")
                ctx.body_changed = True
        elif "stream_options" in body and not ctx.is_stream:
            body.pop("stream_options")
            ctx.body_changed = True
        if ctx.mode == "chat" and ctx.upstream_model.startswith(("o1", "o3")):
            split_reasoning_effort(ctx, body)
            self._o_series(ctx, body, ctx.upstream_model)
        if ctx.channel.param_override and ctx.mode in ("chat", "completions"):
            body.update(ctx.channel.param_override)
            ctx.body_changed = True
        return body

    @staticmethod
    def _o_series(ctx: RelayContext, body: dict[str, Any], model: str) -> None:
        if not body.get("max_completion_tokens") and body.get("max_tokens"):
            body["max_completion_tokens"] = body.pop("max_tokens")
            ctx.body_changed = True
        if "temperature" in body:
            body.pop("temperature")
            ctx.body_changed = True
        msgs = body.get("messages")
        if (
            (model in ("o1", "o1-2024-12-17") or model.startswith("o3"))
            and msgs
            and isinstance(msgs[0], dict)
            and msgs[0].get("role") == "system"
        ):
            msgs[0]["role"] = "developer"
            ctx.body_changed = True

    def build_request(self, ctx: RelayContext) -> UpstreamRequest:
        self.convert_body(ctx)
        body = orjson.dumps(ctx.body) if ctx.body_changed else ctx.raw_body
        return UpstreamRequest("POST", self.request_url(ctx), self.request_headers(ctx), body)

    def parse_response(
        self, ctx: RelayContext, status: int, body: bytes, content_type: str
    ) -> ParsedResponse:
        if status // 100 != 2:
            raise upstream_error_from_response(status, body)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return ParsedResponse(status, body, None, content_type)
        if isinstance(data, dict) and isinstance(data.get("error"), dict) and data["error"].get("type"):
            raise upstream_error_from_response(status if status != 200 else 500, body)
        if isinstance(data, dict) and ctx.channel.setting.get("thinking_to_content"):
            from relay.adaptors import thinking

            if thinking.convert_body(data):
                body = orjson.dumps(data)
        usage = usage_from(data.get("usage")) if isinstance(data, dict) else None
        text = ""
        if usage is None and isinstance(data, dict):
            text = "".join(choice_text(c) for c in data.get("choices") or [] if isinstance(c, dict))
        return ParsedResponse(status, body, usage, content_type or "application/json", text)

    def stream_translator(self, ctx: RelayContext) -> StreamTranslator:
        if ctx.channel.setting.get("thinking_to_content"):
            from relay.adaptors.thinking import ThinkingToContentTranslator

            return ThinkingToContentTranslator(ctx)
        return OpenAIStreamTranslator(ctx)


class CustomURLAdaptor(OpenAIAdaptor):
    """Type 8: base_url is the full request URL, `{model}` replaced by the upstream model."""

    name = "custom"

    def request_url(self, ctx: RelayContext) -> str:
        return ctx.channel.base_url.replace("{model}", ctx.upstream_model)


class CompatibleAdaptor(OpenAIAdaptor):
    """OpenAI-compatible providers that reject stream_options."""

    supports_stream_options = False
