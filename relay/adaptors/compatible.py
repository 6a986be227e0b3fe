"""The OpenAI-compatible family: providers that speak OpenAI's wire format at their own URLs.

Each is a declaration on OpenAIAdaptor, made in its registry entry: which paths it serves each
relay mode at, and extra headers. A path may use `{model}` (upstream model) and `{other}`
(channel.other, e.g. an account id).
"""

from __future__ import annotations

from typing import Any

import orjson

from relay.adaptors.base import RelayContext, StreamTranslator
from relay.adaptors.openai import OpenAIAdaptor, split_reasoning_effort
from relay.adaptors.openai_stream import OpenAIStreamTranslator


class CompatibleAdaptor(OpenAIAdaptor):
    def __init__(
        self,
        name: str,
        paths: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        reasoning_suffix_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.name = name
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
            split_reasoning_effort(ctx, body)
        return body


class VolcEngineAdaptor(CompatibleAdaptor):
    def request_path(self, ctx: RelayContext) -> str | None:
        if ctx.mode == "chat" and ctx.upstream_model.startswith("bot"):
            return "/api/v3/bots/chat/completions"
        return super().request_path(ctx)


class XAIStreamTranslator(OpenAIStreamTranslator):
    """xAI's stream usage counts reasoning in total but not in completion: completion = total − prompt."""

    def __init__(self, ctx: RelayContext) -> None:
        super().__init__(ctx)
        self.fixed = False

    def feed(self, event: str, data: bytes) -> list[bytes]:
        out = super().feed(event, data)
        if self.usage is not None and not self.fixed:
            try:
                raw = orjson.loads(data).get("usage") or {}
            except (orjson.JSONDecodeError, AttributeError):
                raw = {}
            total = int(raw.get("total_tokens") or 0)
            if total > self.usage.prompt_tokens:
                self.usage.completion_tokens = total - self.usage.prompt_tokens
                self.fixed = True
        return out


class XAIAdaptor(CompatibleAdaptor):
    def stream_translator(self, ctx: RelayContext) -> StreamTranslator:
        if ctx.channel.setting.get("thinking_to_content"):
            return super().stream_translator(ctx)
        return XAIStreamTranslator(ctx)
