"""OpenAI and the OpenAI-compatible family: the base most providers are declared on.

The request body is forwarded byte for byte unless something in it must change (model
mapping, forced stream usage, o-series rules, param_override); SSE chunks are forwarded
without re-encoding.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from django.conf import settings

from relay.adaptors.base import (
    Adaptor,
    ParsedResponse,
    RealtimeTarget,
    RelayContext,
    StreamTranslator,
    UpstreamRequest,
)
from relay.adaptors.openai_stream import OpenAIStreamTranslator, choice_text, usage_from
from relay.adaptors.thinking import ThinkingToContentTranslator, fold_reasoning
from relay.errors import upstream_error_from_response
from relay.state import ChannelInfo

REASONING_EFFORTS = ("high", "medium", "low")


def websocket_base(http_base: str) -> str:
    return http_base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


def split_reasoning_effort(ctx: RelayContext, body: dict[str, Any]) -> None:
    """`o3-mini-high` → model o3-mini + reasoning_effort high; pricing keeps the suffixed name."""
    model = ctx.upstream_model
    for effort in REASONING_EFFORTS:
        if model.endswith("-" + effort):
            ctx.upstream_model = model.removesuffix("-" + effort)
            body["model"] = ctx.upstream_model
            body["reasoning_effort"] = effort
            ctx.extra["reasoning_effort"] = effort
            ctx.body_changed = True
            return


class OpenAIAdaptor(Adaptor):
    name = "openai"

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
        if isinstance(data, dict) and ctx.channel.setting.get("thinking_to_content") and fold_reasoning(data):
            body = orjson.dumps(data)
        usage = usage_from(data.get("usage")) if isinstance(data, dict) else None
        text = ""
        if usage is None and isinstance(data, dict):
            text = "".join(choice_text(c) for c in data.get("choices") or [] if isinstance(c, dict))
        return ParsedResponse(status, body, usage, content_type or "application/json", text)

    def stream_translator(self, ctx: RelayContext) -> StreamTranslator:
        if ctx.channel.setting.get("thinking_to_content"):
            return ThinkingToContentTranslator(ctx)
        return OpenAIStreamTranslator(ctx)

    def responses_request(self, ctx: RelayContext, method: str, sub_path: str) -> UpstreamRequest:
        url = self.base_url(ctx.channel) + "/v1/responses" + sub_path
        return self._responses_request(ctx, method, f"{url}?{ctx.query}" if ctx.query else url)

    def _responses_request(self, ctx: RelayContext, method: str, url: str) -> UpstreamRequest:
        headers = self.request_headers(ctx)
        if method != "POST":
            headers.pop("Content-Type", None)
            return UpstreamRequest(method, url, headers, b"")
        if ctx.body.get("model") != ctx.upstream_model:
            ctx.body["model"] = ctx.upstream_model
            ctx.body_changed = True
        body = orjson.dumps(ctx.body) if ctx.body_changed else ctx.raw_body
        return UpstreamRequest(method, url, headers, body)

    def realtime_target(
        self,
        channel: ChannelInfo,
        model: str,
        path: str,
        query: dict[str, list[str]],
        key_in_subprotocol: bool,
    ) -> RealtimeTarget:
        url = websocket_base(self.base_url(channel)) + path + "?" + urlencode({"model": model})
        headers = {"OpenAI-Organization": channel.organization} if channel.organization else {}
        if key_in_subprotocol:
            subprotocols = ["realtime", f"openai-insecure-api-key.{channel.key}", "openai-beta.realtime-v1"]
            return RealtimeTarget(url, headers, subprotocols)
        headers.update({"Authorization": f"Bearer {channel.key}", "openai-beta": "realtime=v1"})
        return RealtimeTarget(url, headers)


class CustomURLAdaptor(OpenAIAdaptor):
    """base_url is the full request URL, `{model}` replaced by the upstream model."""

    name = "custom"

    def request_url(self, ctx: RelayContext) -> str:
        return ctx.channel.base_url.replace("{model}", ctx.upstream_model)
