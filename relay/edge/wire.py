"""Plain request/response objects between the ASGI layer and the relay services."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field

import orjson

from relay.errors import RelayError


@dataclass(slots=True)
class ClientRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names, last value wins
    body: bytes
    client_ip: str
    request_id: str = field(default_factory=lambda: new_request_id())
    started: float = field(default_factory=time.time)


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: bytes = b"application/json"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class StreamingResponse:
    status: int
    chunks: AsyncGenerator[bytes, None]  # closed with aclose() however the stream ends
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    # Runs after the stream ends however it ended; must be idempotent. It covers a generator
    # that never started (client gone before the first byte), whose own cleanup never runs.
    on_close: Callable[[], Awaitable[None]] | None = None


def new_request_id() -> str:
    # New API's shape: a timestamp, nanoseconds, 8 random hex digits (no secret: `random` will do,
    # and saves a getrandom syscall per request).
    return (
        time.strftime("%Y%m%d%H%M%S") + str(time.time_ns() % 1_000_000_000) + f"{random.getrandbits(32):08x}"
    )


def json_response(data: object, status: int = 200) -> Response:
    return Response(status, orjson.dumps(data))


def error_response(err: RelayError, request_id: str = "") -> Response:
    body = err.body()
    if request_id:
        body["error"]["message"] = f"{err.message} (request id: {request_id})"
    return Response(err.status, orjson.dumps(body))
