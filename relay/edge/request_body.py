"""The request body limit (MAX_REQUEST_BODY_MB) and the gzip decoding bound by it.

The same byte limit applies to the body as it arrives (the web worker's HTTP layer and the relay's
body reader) and to what a `Content-Encoding: gzip` body inflates to, so a small compressed body
cannot expand into gigabytes in memory.
"""

from __future__ import annotations

import zlib

import orjson
from django.conf import settings

from relay.errors import LocalError

_STEP = 1 << 20  # inflate at most this much per call, so the cap is checked as the output grows


def max_body_bytes() -> int:
    return (settings.MAX_REQUEST_BODY_MB or 32) * 1024 * 1024


def too_large(limit: int) -> LocalError:
    return LocalError(
        f"request body larger than {limit // (1024 * 1024)} MB",
        status=413,
        type="invalid_request_error",
        code="request_too_large",
    )


def too_large_http_response(limit: int) -> bytes:
    """A complete HTTP/1.1 413 that also closes the connection, for the HTTP layer to write as is."""
    body = orjson.dumps(too_large(limit).body())
    head = (
        "HTTP/1.1 413 Request Entity Too Large\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def gunzip(body: bytes, limit: int) -> bytes:
    """Inflate a gzip body (one or more members) without ever holding more than `limit` bytes
    of output: past it, a 413 at once; a corrupt or truncated stream is a 400."""
    out: list[bytes] = []
    size = 0
    data = body
    try:
        while data:
            inflater = zlib.decompressobj(wbits=31)  # gzip framing only
            while True:
                piece = inflater.decompress(data, min(_STEP, limit - size + 1))
                size += len(piece)
                if size > limit:
                    raise too_large(limit)
                out.append(piece)
                data = inflater.unconsumed_tail
                if inflater.eof:
                    data = inflater.unused_data
                    break
                if not data and not piece:
                    raise zlib.error("truncated")
    except zlib.error:
        raise LocalError("bad gzip body", status=400, type="invalid_request_error") from None
    return b"".join(out)
