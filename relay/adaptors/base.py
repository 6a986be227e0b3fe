"""The adaptor interface: turn our request into a provider's, and its answer back into ours.

Adaptors do no I/O. The pipeline (relay/modes/pipeline.py) sends what `build_request` returns through
the shared client, then hands the answer to `parse_response` or, for streams, to the
`StreamTranslator` from `stream_translator`. Raise relay.errors.RelayError subclasses for
anything the client should see as an error.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from relay.state import ChannelInfo
from relay.streaming import frame, iter_events


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class RelayContext:
    """What an adaptor knows about one attempt."""

    mode: str  # chat | completions | embeddings | moderations | ...
    channel: ChannelInfo
    origin_model: str
    upstream_model: str
    path: str  # client path, e.g. /v1/chat/completions
    query: str
    body: dict[str, Any]
    raw_body: bytes
    client_headers: dict[str, str]
    is_stream: bool = False
    client_wants_usage: bool = False
    body_changed: bool = False  # set when body differs from raw_body
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class ParsedResponse:
    status: int
    body: bytes
    usage: Usage | None
    content_type: str = "application/json"
    completion_text: str = ""


class StreamTranslator:
    """Consumes upstream SSE events, returns the bytes to send the client, tracks usage.

    `text` accumulates model output actually received (content, reasoning, tool arguments):
    what a disconnect or a missing usage block is billed from, never error text.
    """

    def __init__(self, ctx: RelayContext) -> None:
        self.ctx = ctx
        self.usage: Usage | None = None
        self.text_parts: list[str] = []
        self.tool_calls = 0
        self.first_output = False

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def feed(self, event: str, data: bytes) -> list[bytes]:
        raise NotImplementedError

    def finish(self) -> list[bytes]:
        raise NotImplementedError


class ChunkWriter(StreamTranslator):
    """A translator from another wire format: writes OpenAI `chat.completion.chunk` frames."""

    def __init__(self, ctx: RelayContext, chunk_id: str = "") -> None:
        super().__init__(ctx)
        self.id = chunk_id
        self.created = int(time.time())

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return frame(
            orjson.dumps(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.ctx.origin_model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
            )
        )

    @staticmethod
    def parse(data: bytes) -> dict[str, Any] | None:
        """One event's JSON object, or None for anything else (keep-alives, junk)."""
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        return obj if isinstance(obj, dict) else None


class Adaptor:
    name = "base"
    default_base_url = ""
    # Channel types that accept stream_options (relay.md §7.1)
    supports_stream_options = False
    # True when the adaptor must `await setup(ctx)` before build_request (an OAuth token to fetch):
    # a flag, so adaptors without it add no await to the hot path.
    needs_setup = False

    async def setup(self, ctx: RelayContext) -> None:
        """I/O an attempt needs before its request can be built (credentials); build_request stays sync."""

    def is_stream_response(self, content_type: str) -> bool:
        return "text/event-stream" in content_type

    def event_source(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, bytes]]:
        """The upstream stream as (event name, data) pairs for the translator: SSE unless overridden."""
        return iter_events(chunks)

    def base_url(self, channel: ChannelInfo) -> str:
        return channel.base_url or self.default_base_url

    def build_request(self, ctx: RelayContext) -> UpstreamRequest:
        raise NotImplementedError

    def parse_response(
        self, ctx: RelayContext, status: int, body: bytes, content_type: str
    ) -> ParsedResponse:
        raise NotImplementedError

    def stream_translator(self, ctx: RelayContext) -> StreamTranslator:
        raise NotImplementedError
