"""AWS Bedrock, Claude models: InvokeModel / InvokeModelWithResponseStream over HTTPS, signed with
SigV4 (relay/upstream/aws.py).

The channel key is `AK|SK|region` (an optional fourth part is a session token). The body is a
Claude Messages body without `model`/`stream`, with `anthropic_version: bedrock-2023-05-31`;
answers are Claude's, so the Claude converters are reused. The streamed answer is AWS
event-stream framing whose `chunk` events carry a base64 Claude event in `bytes`.
channel.base_url, when set, replaces https://bedrock-runtime.<region>.amazonaws.com.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from relay.adaptors.base import RelayContext, UpstreamRequest
from relay.adaptors.claude import ClaudeAdaptor, apply_thinking_suffix, default_max_tokens, openai_to_claude
from relay.errors import LocalError
from relay.upstream import aws

BEDROCK_VERSION = "bedrock-2023-05-31"
EVENTSTREAM = "application/vnd.amazon.eventstream"

MODEL_IDS = {
    "claude-instant-1.2": "anthropic.claude-instant-v1",
    "claude-2.0": "anthropic.claude-v2",
    "claude-2.1": "anthropic.claude-v2:1",
    "claude-3-sonnet-20240229": "anthropic.claude-3-sonnet-20240229-v1:0",
    "claude-3-opus-20240229": "anthropic.claude-3-opus-20240229-v1:0",
    "claude-3-haiku-20240307": "anthropic.claude-3-haiku-20240307-v1:0",
    "claude-3-5-sonnet-20240620": "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "claude-3-5-sonnet-20241022": "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "claude-3-5-haiku-20241022": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "claude-3-7-sonnet-20250219": "anthropic.claude-3-7-sonnet-20250219-v1:0",
    "claude-sonnet-4-20250514": "anthropic.claude-sonnet-4-20250514-v1:0",
    "claude-opus-4-20250514": "anthropic.claude-opus-4-20250514-v1:0",
}
# Inference profiles: which geography prefixes each model can be called through.
_ALL = {"us", "eu", "apac"}
CROSS_REGION = {
    "anthropic.claude-3-sonnet-20240229-v1:0": _ALL,
    "anthropic.claude-3-opus-20240229-v1:0": {"us"},
    "anthropic.claude-3-haiku-20240307-v1:0": _ALL,
    "anthropic.claude-3-5-sonnet-20240620-v1:0": _ALL,
    "anthropic.claude-3-5-sonnet-20241022-v2:0": {"us", "apac"},
    "anthropic.claude-3-5-haiku-20241022-v1:0": {"us"},
    "anthropic.claude-3-7-sonnet-20250219-v1:0": _ALL,
    "anthropic.claude-sonnet-4-20250514-v1:0": _ALL,
    "anthropic.claude-opus-4-20250514-v1:0": {"us"},
}


def parse_key(key: str) -> tuple[str, str, str, str]:
    parts = [p.strip() for p in key.split("|")]
    if len(parts) not in (3, 4) or not all(parts[:3]):
        raise LocalError(
            "AWS channel key must be AK|SK|region",
            status=500,
            type="new_api_error",
            code="invalid_channel_key",
        )
    return parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else ""


def model_id(model: str, region: str) -> str:
    """Claude name → Bedrock model id, with the region's inference-profile prefix where it exists."""
    mid = MODEL_IDS.get(model, model)
    geo = region.split("-", 1)[0]
    geo = "apac" if geo == "ap" else geo
    if geo in CROSS_REGION.get(mid, ()):
        return f"{geo}.{mid}"
    return mid


def bedrock_body(claude: dict[str, Any], ctx: RelayContext) -> bytes:
    body = {k: v for k, v in claude.items() if k not in ("model", "stream")}
    body["anthropic_version"] = BEDROCK_VERSION
    beta = ctx.client_headers.get("anthropic-beta")
    if beta and "anthropic_beta" not in body:
        body["anthropic_beta"] = [b.strip() for b in beta.split(",") if b.strip()]
    return orjson.dumps(body)


class BedrockAdaptor(ClaudeAdaptor):
    """Also OwnStreamFormat: the answer streams as AWS event-stream frames."""

    name = "aws"

    def _signed(self, ctx: RelayContext, model: str, body: bytes) -> UpstreamRequest:
        ak, sk, region, session = parse_key(ctx.channel.key)
        base = (ctx.channel.base_url or f"https://bedrock-runtime.{region}.amazonaws.com").rstrip("/")
        action = "invoke-with-response-stream" if ctx.is_stream else "invoke"
        # The id's ':' stays raw: it is what goes on the wire, and what the signature encodes once more.
        url = f"{base}/model/{model_id(model, region)}/{action}"
        headers = {
            "Content-Type": "application/json",
            "Accept": EVENTSTREAM if ctx.is_stream else "application/json",
        }
        return UpstreamRequest(
            "POST",
            url,
            aws.sign("POST", url, headers, body, ak, sk, region, "bedrock", session_token=session),
            body,
        )

    def build_request(self, ctx: RelayContext) -> UpstreamRequest:
        if ctx.mode != "chat":
            raise LocalError(
                f"{ctx.mode} is not supported by AWS channels",
                status=400,
                type="invalid_request_error",
                code="invalid_api_type",
            )
        claude = openai_to_claude(dict(ctx.body), ctx.upstream_model, ctx.options)
        model = apply_thinking_suffix(claude, ctx.upstream_model, ctx.options)
        ctx.extra.setdefault("created", _now())
        return self._signed(ctx, model, bedrock_body(claude, ctx))

    def build_native_request(self, ctx: RelayContext) -> UpstreamRequest:
        body = dict(ctx.body)
        model = apply_thinking_suffix(body, ctx.upstream_model, ctx.options)
        if not body.get("max_tokens"):
            body["max_tokens"] = default_max_tokens(ctx.options, model)
        return self._signed(ctx, model, bedrock_body(body, ctx))

    def is_stream_response(self, content_type: str) -> bool:
        return EVENTSTREAM in content_type

    async def event_source(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, bytes]]:
        async for headers, payload in aws.iter_messages(chunks):
            kind = headers.get(":message-type")
            if kind == "event" and headers.get(":event-type") == "chunk":
                try:
                    yield "", base64.b64decode(orjson.loads(payload)["bytes"])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
            elif kind in ("exception", "error"):
                etype = str(headers.get(":exception-type") or headers.get(":error-code") or "upstream_error")
                try:
                    message = str(orjson.loads(payload).get("message") or etype)
                except (orjson.JSONDecodeError, AttributeError):
                    message = payload.decode("utf-8", "replace") or etype
                yield "error", orjson.dumps({"type": "error", "error": {"type": etype, "message": message}})


def _now() -> int:
    return int(time.time())
