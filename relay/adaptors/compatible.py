"""The OpenAI-compatible family: providers that speak OpenAI's wire format at their own URLs.

Each is a declaration on OpenAIAdaptor (shared/spec/relay.md §7.2, §7.11): its channel type, which
paths it serves each relay mode at, extra headers, and whether it accepts stream_options.
A path may use `{model}` (upstream model) and `{other}` (channel.other, e.g. an account id).
"""

from __future__ import annotations

from typing import Any

from relay.adaptors.base import RelayContext, StreamTranslator
from relay.adaptors.openai import OpenAIAdaptor, OpenAIStreamTranslator, usage_from
from relay.channels.types import default_base_url

# New API's SupportStreamOptions list, less the non-OpenAI-family types.
STREAM_OPTIONS_TYPES = {1, 3, 4, 39, 45, 48}


class CompatibleAdaptor(OpenAIAdaptor):
    def __init__(
        self,
        name: str,
        channel_type: int,
        paths: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        reasoning_suffix_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.channel_type = channel_type
        self.default_base_url = default_base_url(channel_type)
        self.supports_stream_options = channel_type in STREAM_OPTIONS_TYPES
        self.paths = paths or {}
        self.extra_headers = headers or {}
        self.reasoning_suffix_prefixes = reasoning_suffix_prefixes

    def request_path(self, ctx: RelayContext) -> str | None:
        """The provider's path for this mode, or None for the client's own path."""
        return self.paths.get(ctx.mode)

    def request_url(self, ctx: RelayContext) -> str:
        path = self.request_path(ctx)
        if path is None:
            return super().request_url(ctx)
        return self.base_url(ctx.channel) + path.format(model=ctx.upstream_model, other=ctx.channel.other)

    def request_headers(self, ctx: RelayContext) -> dict[str, str]:
        headers = super().request_headers(ctx)
        headers.update(self.extra_headers)
        return headers

    def convert_body(self, ctx: RelayContext) -> dict[str, Any]:
        body = super().convert_body(ctx)
        if self.reasoning_suffix_prefixes and ctx.upstream_model.startswith(self.reasoning_suffix_prefixes):
            from relay.adaptors.openai import split_reasoning_effort

            split_reasoning_effort(ctx, body)
        return body


class VolcEngineAdaptor(CompatibleAdaptor):
    def request_path(self, ctx: RelayContext) -> str | None:
        if ctx.mode == "chat" and ctx.upstream_model.startswith("bot"):
            return "/api/v3/bots/chat/completions"
        return super().request_path(ctx)


class XAIStreamTranslator(OpenAIStreamTranslator):
    """xAI's stream usage counts reasoning in total but not in completion: completion = total − prompt."""

    def feed(self, event: str, data: bytes) -> list[bytes]:
        out = super().feed(event, data)
        if self.usage is not None and not getattr(self, "_fixed", False):
            import orjson

            try:
                raw = orjson.loads(data).get("usage") or {}
            except (orjson.JSONDecodeError, AttributeError):
                raw = {}
            total = int(raw.get("total_tokens") or 0)
            if total > self.usage.prompt_tokens:
                self.usage.completion_tokens = total - self.usage.prompt_tokens
                self._fixed = True
        return out


class XAIAdaptor(CompatibleAdaptor):
    def stream_translator(self, ctx: RelayContext) -> StreamTranslator:
        if ctx.channel.setting.get("thinking_to_content"):
            return super().stream_translator(ctx)
        return XAIStreamTranslator(ctx)


def _declarations() -> dict[int, OpenAIAdaptor]:
    v1 = {
        "chat": "/v1/chat/completions",
        "completions": "/v1/completions",
        "embeddings": "/v1/embeddings",
        "moderations": "/v1/moderations",
    }
    return {
        4: CompatibleAdaptor("ollama", 4),
        19: CompatibleAdaptor("360", 19),
        20: CompatibleAdaptor(
            "openrouter",
            20,
            headers={"HTTP-Referer": "https://github.com/Calcium-Ion/new-api", "X-Title": "New API"},
        ),
        25: CompatibleAdaptor("moonshot", 25),
        26: CompatibleAdaptor(
            "zhipu_v4",
            26,
            paths={"chat": "/api/paas/v4/chat/completions", "embeddings": "/api/paas/v4/embeddings"},
        ),
        27: CompatibleAdaptor("perplexity", 27, paths={"chat": "/chat/completions"}),
        31: CompatibleAdaptor("lingyiwanwu", 31),
        38: CompatibleAdaptor("jina", 38),  # embeddings at /v1/embeddings; rerank in rerank.py
        35: CompatibleAdaptor(
            "minimax", 35, paths={"chat": "/v1/text/chatcompletion_v2", "embeddings": "/v1/embeddings"}
        ),
        39: CompatibleAdaptor(
            "cloudflare",
            39,
            paths={
                "chat": "/client/v4/accounts/{other}/ai/v1/chat/completions",
                "completions": "/client/v4/accounts/{other}/ai/v1/completions",
                "embeddings": "/client/v4/accounts/{other}/ai/v1/embeddings",
            },
        ),
        40: CompatibleAdaptor("siliconflow", 40, paths=v1),
        42: CompatibleAdaptor("mistral", 42),
        43: CompatibleAdaptor(
            "deepseek", 43, paths={"chat": "/v1/chat/completions", "completions": "/beta/completions"}
        ),
        45: VolcEngineAdaptor(
            "volcengine", 45, paths={"chat": "/api/v3/chat/completions", "embeddings": "/api/v3/embeddings"}
        ),
        46: CompatibleAdaptor(
            "baidu_v2", 46, paths={"chat": "/v2/chat/completions", "embeddings": "/v2/embeddings"}
        ),
        47: CompatibleAdaptor("xinference", 47),
        48: XAIAdaptor(
            "xai", 48, paths={"chat": "/v1/chat/completions"}, reasoning_suffix_prefixes=("grok-3-mini",)
        ),
    }


COMPATIBLE: dict[int, OpenAIAdaptor] = _declarations()

__all__ = ["COMPATIBLE", "CompatibleAdaptor", "usage_from"]
