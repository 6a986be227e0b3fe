"""Google Vertex AI: Claude and Gemini models behind a service-account key.

The key is the service-account JSON; `setup` turns it into an OAuth access token (cached,
relay/upstream/google_auth.py) before the request is built. The region comes from channel.other: a plain
string, or JSON {"default": "...", "<origin model>": "..."}. Claude models use Anthropic's
rawPredict / streamRawPredict with `anthropic_version: vertex-2023-10-16`; Gemini models use
generateContent / streamGenerateContent?alt=sse with the Gemini conversion. channel.base_url,
when set, replaces https://<region>-aiplatform.googleapis.com (tests point it at a fake).
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

from relay.adaptors.base import Adaptor, ParsedResponse, RelayContext, StreamTranslator, UpstreamRequest
from relay.adaptors.claude import ClaudeAdaptor, apply_thinking_suffix, default_max_tokens, openai_to_claude
from relay.adaptors.gemini import GeminiAdaptor, native_url, openai_to_gemini
from relay.errors import LocalError
from relay.upstream import google_auth, proxies
from relay.upstream.safe_paths import check_url_segment

VERTEX_VERSION = "vertex-2023-10-16"
DEFAULT_REGION = "us-central1"
_DATE = re.compile(r"-(\d{8})$")
_CLAUDE = ClaudeAdaptor()
_GEMINI = GeminiAdaptor()


def region_for(other: str, model: str) -> str:
    other = (other or "").strip()
    if other.startswith("{"):
        try:
            table = orjson.loads(other)
        except orjson.JSONDecodeError:
            table = {}
        if isinstance(table, dict):
            return str(table.get(model) or table.get("default") or DEFAULT_REGION)
    return other or DEFAULT_REGION


def claude_model(model: str) -> str:
    """claude-3-5-sonnet-20241022 → claude-3-5-sonnet-v2@20241022; other dates become @date."""
    if model == "claude-3-5-sonnet-20241022":
        return "claude-3-5-sonnet-v2@20241022"
    return _DATE.sub(r"@\1", model) if "@" not in model else model


def is_claude(ctx: RelayContext) -> bool:
    return ctx.upstream_model.startswith("claude")


class VertexAdaptor(Adaptor):
    """Also NeedsSetup (the OAuth token), NativeClaude (Claude models only) and NativeGemini (Gemini models)."""

    name = "vertex"

    async def setup(self, ctx: RelayContext) -> None:
        sa = google_auth.parse_service_account(ctx.channel.key)
        ctx.extra["vertex_sa"] = sa
        ctx.extra["vertex_token"] = await google_auth.access_token(sa, proxies.of(ctx.channel))

    def _url(self, ctx: RelayContext, publisher: str, model: str, action: str) -> str:
        region = region_for(ctx.channel.other, ctx.origin_model)
        if ctx.channel.base_url:
            base = ctx.channel.base_url
        else:
            base = (
                "https://aiplatform.googleapis.com"
                if region == "global"
                else f"https://{region}-aiplatform.googleapis.com"
            )
        project = ctx.extra["vertex_sa"].project_id
        check_url_segment(model)
        return (
            f"{base}/v1/projects/{project}/locations/{region}/publishers/{publisher}/models/{model}:{action}"
        )

    def _headers(self, ctx: RelayContext) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {ctx.extra['vertex_token']}", "Content-Type": "application/json"}
        if ctx.is_stream:
            headers["Accept"] = "text/event-stream"
        return headers

    def _claude(self, ctx: RelayContext, body: dict[str, Any]) -> UpstreamRequest:
        model = claude_model(apply_thinking_suffix(body, ctx.upstream_model, ctx.options))
        body = {k: v for k, v in body.items() if k != "model"}
        body["anthropic_version"] = VERTEX_VERSION
        if ctx.is_stream:
            body["stream"] = True
        action = "streamRawPredict?alt=sse" if ctx.is_stream else "rawPredict"
        return UpstreamRequest(
            "POST", self._url(ctx, "anthropic", model, action), self._headers(ctx), orjson.dumps(body)
        )

    def build_request(self, ctx: RelayContext) -> UpstreamRequest:
        if ctx.mode != "chat":
            raise LocalError(
                f"{ctx.mode} is not supported by Vertex AI channels",
                status=400,
                type="invalid_request_error",
                code="invalid_api_type",
            )
        if is_claude(ctx):
            ctx.extra.setdefault("created", _now())
            return self._claude(ctx, openai_to_claude(dict(ctx.body), ctx.upstream_model, ctx.options))
        if ctx.upstream_model.startswith("gemini"):
            action = "streamGenerateContent?alt=sse" if ctx.is_stream else "generateContent"
            url = self._url(ctx, "google", ctx.upstream_model, action)
            return UpstreamRequest(
                "POST", url, self._headers(ctx), orjson.dumps(openai_to_gemini(ctx.body, ctx.options))
            )
        raise LocalError(
            f"model {ctx.upstream_model} is not supported by Vertex AI channels",
            status=400,
            type="invalid_request_error",
            code="invalid_api_type",
        )

    def build_gemini_request(self, ctx: RelayContext, action: str) -> UpstreamRequest | None:
        """Gemini's own API for Gemini models (NativeGemini); other models are converted by the mode."""
        if not ctx.upstream_model.startswith("gemini"):
            return None
        url = self._url(ctx, "google", ctx.upstream_model, action)
        return UpstreamRequest("POST", native_url(url, action, ctx.query), self._headers(ctx), ctx.raw_body)

    def parse_response(
        self, ctx: RelayContext, status: int, body: bytes, content_type: str
    ) -> ParsedResponse:
        return (_CLAUDE if is_claude(ctx) else _GEMINI).parse_response(ctx, status, body, content_type)

    def stream_translator(self, ctx: RelayContext) -> StreamTranslator:
        return (_CLAUDE if is_claude(ctx) else _GEMINI).stream_translator(ctx)

    # native /v1/messages: Claude models only
    def build_native_request(self, ctx: RelayContext) -> UpstreamRequest:
        if not is_claude(ctx):
            raise LocalError(
                "/v1/messages on Vertex AI needs a Claude model",
                status=400,
                type="invalid_request_error",
                code="invalid_api_type",
            )
        body = dict(ctx.body)
        if not body.get("max_tokens"):
            body["max_tokens"] = default_max_tokens(ctx.options, ctx.upstream_model)
        return self._claude(ctx, body)

    def parse_native(self, ctx: RelayContext, status: int, body: bytes) -> ParsedResponse:
        return _CLAUDE.parse_native(ctx, status, body)

    def native_stream_translator(self, ctx: RelayContext) -> StreamTranslator:
        return _CLAUDE.native_stream_translator(ctx)


def _now() -> int:
    return int(time.time())
