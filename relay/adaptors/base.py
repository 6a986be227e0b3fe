"""The adaptor interface: turn our request into a provider's, and its answer back into ours.

Adaptors do no I/O. The pipeline (relay/modes/pipeline.py) sends what `build_request` returns through
the shared client, then hands the answer to `parse_response` or, for streams, to the
`StreamTranslator` from `stream_translator`. Raise relay.errors.RelayError subclasses for
anything the client should see as an error.

What only some adaptors can do is declared by implementing a small Protocol (NeedsSetup,
OwnStreamFormat, NativeClaude, NativeGemini). Each adaptor class resolves them once, when it is defined
(an isinstance against a Protocol costs microseconds): callers ask with needs_setup(),
speaks_claude(), is_stream_response() and upstream_events(), never with getattr.
Adaptors read no settings store: what they need from the options comes in ctx.options.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeGuard, runtime_checkable

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


class OptionReader(Protocol):
    """The read side of the options store, as the mode hands it to adaptors."""

    def get_bool(self, key: str) -> bool: ...

    def get_float(self, key: str, default: float = 0.0) -> float: ...

    def get_json(self, key: str, default: Any = None) -> Any: ...


class NoOptions:
    """Every option at the default its reader passes: for contexts built without the store."""

    def get_bool(self, key: str) -> bool:
        return False

    def get_float(self, key: str, default: float = 0.0) -> float:
        return default

    def get_json(self, key: str, default: Any = None) -> Any:
        return default


NO_OPTIONS = NoOptions()


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
    options: OptionReader = NO_OPTIONS  # the mode passes the live store


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
    # Set from the provider's registry entry (relay/adaptors/registry.py), not per class.
    default_base_url = ""
    supports_stream_options = False  # accepts OpenAI's stream_options
    # Optional capabilities of this class, resolved once when the class is defined.
    capabilities: ClassVar[Capabilities]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.capabilities = Capabilities.of(cls)

    def declare(self, base_url: str, stream_options: bool) -> None:
        """What the registry entry says about this provider."""
        self.default_base_url = base_url
        self.supports_stream_options = stream_options

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


# -- optional capabilities -------------------------------------------------------------------------
@runtime_checkable
class NeedsSetup(Protocol):
    """I/O an attempt needs before its request can be built (an OAuth token); build_request stays sync."""

    async def setup(self, ctx: RelayContext) -> None: ...


@runtime_checkable
class OwnStreamFormat(Protocol):
    """A streamed answer that is not SSE (AWS event-stream, NDJSON)."""

    def is_stream_response(self, content_type: str) -> bool: ...

    def event_source(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, bytes]]:
        """The upstream stream as (event name, data) pairs for the translator."""
        ...


@runtime_checkable
class NativeClaude(Protocol):
    """Serves Anthropic's /v1/messages as is: native request, native answer, native stream."""

    def build_native_request(self, ctx: RelayContext) -> UpstreamRequest: ...

    def parse_native(self, ctx: RelayContext, status: int, body: bytes) -> ParsedResponse: ...

    def native_stream_translator(self, ctx: RelayContext) -> StreamTranslator: ...


@runtime_checkable
class NativeGemini(Protocol):
    """Serves Gemini's own API (generateContent, streamGenerateContent, countTokens, embedContent…) as is."""

    def build_gemini_request(self, ctx: RelayContext, action: str) -> UpstreamRequest | None:
        """The native request for `models/{ctx.upstream_model}:{action}` (streams asked with alt=sse),
        or None when this channel cannot serve the model natively (the mode converts it instead)."""
        ...


@dataclass(frozen=True, slots=True)
class RealtimeTarget:
    """Where a /v1/realtime websocket is dialled and how it signs in."""

    url: str
    headers: dict[str, str]
    subprotocols: list[str] | None = None


@runtime_checkable
class ServesRealtime(Protocol):
    """Opens OpenAI Realtime websockets (the relay pipes frames both ways and bills from the events)."""

    def realtime_target(
        self,
        channel: ChannelInfo,
        model: str,
        path: str,
        query: dict[str, list[str]],
        key_in_subprotocol: bool,
    ) -> RealtimeTarget:
        """`key_in_subprotocol`: the client signed in through Sec-WebSocket-Protocol (browsers), so do the same."""
        ...


@runtime_checkable
class NativeResponses(Protocol):
    """Serves OpenAI's Responses API (/v1/responses and its follow-ups) as is."""

    def responses_request(self, ctx: RelayContext, method: str, sub_path: str) -> UpstreamRequest:
        """The upstream request for `method /v1/responses{sub_path}` (ctx.body is the POST body)."""
        ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    setup: bool = False
    native_responses: bool = False
    stream_format: bool = False
    native_claude: bool = False
    realtime: bool = False
    native_gemini: bool = False

    @classmethod
    def of(cls, adaptor_class: type) -> Capabilities:
        return cls(
            setup=issubclass(adaptor_class, NeedsSetup),
            native_responses=issubclass(adaptor_class, NativeResponses),
            stream_format=issubclass(adaptor_class, OwnStreamFormat),
            native_claude=issubclass(adaptor_class, NativeClaude),
            realtime=issubclass(adaptor_class, ServesRealtime),
            native_gemini=issubclass(adaptor_class, NativeGemini),
        )


Adaptor.capabilities = Capabilities()


def needs_setup(adaptor: Adaptor) -> TypeGuard[NeedsSetup]:
    return adaptor.capabilities.setup


def speaks_claude(adaptor: Adaptor) -> TypeGuard[NativeClaude]:
    return adaptor.capabilities.native_claude


def serves_realtime(adaptor: Adaptor) -> TypeGuard[ServesRealtime]:
    return adaptor.capabilities.realtime


def owns_stream_format(adaptor: Adaptor) -> TypeGuard[OwnStreamFormat]:
    return adaptor.capabilities.stream_format


def speaks_gemini(adaptor: Adaptor) -> TypeGuard[NativeGemini]:
    return adaptor.capabilities.native_gemini


def speaks_responses(adaptor: Adaptor) -> TypeGuard[NativeResponses]:
    return adaptor.capabilities.native_responses


def is_stream_response(adaptor: Adaptor, content_type: str) -> bool:
    if owns_stream_format(adaptor):
        return adaptor.is_stream_response(content_type)
    return "text/event-stream" in content_type


def upstream_events(adaptor: Adaptor, chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, bytes]]:
    """The upstream stream as (event name, data) pairs: the adaptor's own format, else SSE."""
    if owns_stream_format(adaptor):
        return adaptor.event_source(chunks)
    return iter_events(chunks)
