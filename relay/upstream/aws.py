"""AWS request signing (Signature Version 4) and the event-stream binary framing, written here
rather than pulling in botocore (~15 MB with its service JSON) for two small, stable algorithms.

SigV4 follows docs.aws.amazon.com "Create a signed AWS API request" and is checked against AWS's
published SigV4 test suite (tests/relay/test_aws_sigv4.py); the canonical URI is the path exactly
as it goes on the wire, URI-encoded once more (every service but S3 does that).
Event-stream messages: total length (4), headers length (4), prelude CRC32 (4), headers,
payload, message CRC32 (4), all big-endian.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _enc(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_query(query: str) -> str:
    pairs = sorted((_enc(k), _enc(v)) for k, v in parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{k}={v}" for k, v in pairs)


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    now: datetime | None = None,
    session_token: str = "",
) -> dict[str, str]:
    """Return `headers` plus host, x-amz-date (and x-amz-security-token) and Authorization."""
    parts = urlsplit(url)
    now = now or datetime.now(UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    out = dict(headers)
    out["X-Amz-Date"] = amz_date
    if session_token:
        out["X-Amz-Security-Token"] = session_token
    canon = {k.lower(): " ".join(str(v).split()) for k, v in out.items()}
    canon["host"] = parts.netloc
    signed = sorted(canon)
    canonical_request = "\n".join(
        [
            method.upper(),
            quote(parts.path or "/", safe="/~"),
            canonical_query(parts.query),
            "".join(f"{k}:{canon[k]}\n" for k in signed),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return out


# -- event stream ----------------------------------------------------------------------------------
class EventStreamError(ValueError):
    pass


_FIXED = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}


def parse_headers(raw: bytes) -> dict[str, object]:
    headers: dict[str, object] = {}
    i = 0
    while i < len(raw):
        n = raw[i]
        name = raw[i + 1 : i + 1 + n].decode()
        i += 1 + n
        kind = raw[i]
        i += 1
        if kind in (6, 7):  # byte array, string: 2-byte length
            (size,) = struct.unpack_from(">H", raw, i)
            value = raw[i + 2 : i + 2 + size]
            headers[name] = value.decode() if kind == 7 else value
            i += 2 + size
        elif kind in _FIXED:
            size = _FIXED[kind]
            headers[name] = True if kind == 0 else False if kind == 1 else raw[i : i + size]
            i += size
        else:
            raise EventStreamError(f"unknown header type {kind}")
    return headers


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message with string headers (used by tests' fakes and kept next to the decoder)."""
    hb = b"".join(
        bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
        for k, v in headers.items()
    )
    total = 12 + len(hb) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hb))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    msg = prelude + hb + payload
    return msg + struct.pack(">I", zlib.crc32(msg))


async def iter_messages(
    chunks: AsyncIterator[bytes], max_message: int = 16 * 1024 * 1024
) -> AsyncIterator[tuple[dict[str, object], bytes]]:
    """Yield (headers, payload) for each complete message, checking both CRCs."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= 12:
            total, hlen, pcrc = struct.unpack_from(">III", buffer)
            if zlib.crc32(buffer[:8]) != pcrc:
                raise EventStreamError("event-stream prelude CRC mismatch")
            if total > max_message or total < 16 or hlen > total - 16:
                raise EventStreamError("event-stream message length out of range")
            if len(buffer) < total:
                break
            msg, buffer = buffer[:total], buffer[total:]
            (mcrc,) = struct.unpack_from(">I", msg, total - 4)
            if zlib.crc32(msg[:-4]) != mcrc:
                raise EventStreamError("event-stream message CRC mismatch")
            yield parse_headers(msg[12 : 12 + hlen]), msg[12 + hlen : total - 4]
    if buffer:
        raise EventStreamError("event-stream ended inside a message")
