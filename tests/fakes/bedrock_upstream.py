"""A fake Bedrock runtime (InvokeModel, InvokeModelWithResponseStream) on 127.0.0.1 that checks
every request's SigV4 signature the way AWS does: it rebuilds the canonical request from what it
received and signs it with the secret it knows for the access key (independently of relay/upstream/aws.py).

Access keys: any key in `secrets` answers Claude's "Hello from Claude!" (usage 10/5); a key
starting `status-<code>` answers that status the Bedrock way; `throttle` streams one text delta
then a throttlingException message. A bad signature answers 403 InvalidSignatureException.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import parse_qsl, quote

from aiohttp import web

from tests.fakes.anthropic_upstream import message_for, stream_events
from tests.fakes.openai_upstream import Recorded
from tests.fakes.server import ThreadedServer


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    hb = b""
    for k, v in headers.items():
        hb += bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v)) + v.encode()
    prelude = struct.pack(">II", 16 + len(hb) + len(payload), len(hb))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + hb + payload
    return body + struct.pack(">I", zlib.crc32(body))


def expected_signature(request: web.Request, body: bytes, secret: str, signed_headers: list[str], scope: str) -> str:
    path, _, query = request.raw_path.partition("?")
    q = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in parse_qsl(query, keep_blank_values=True))
    canonical = "\n".join([
        request.method,
        quote(path, safe="/~"),
        "&".join(f"{k}={v}" for k, v in q),
        "".join(f"{h}:{' '.join(request.headers.get(h, '').split())}\n" for h in signed_headers),
        ";".join(signed_headers),
        hashlib.sha256(body).hexdigest(),
    ])
    day, region, service, _ = scope.split("/")
    string = "\n".join(["AWS4-HMAC-SHA256", request.headers["x-amz-date"], scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string.encode(), hashlib.sha256).hexdigest()


@dataclass
class FakeBedrock(ThreadedServer):
    secrets: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def last(self, key: str) -> Recorded:
        return [r for r in self.requests if r.key == key][-1]

    def _verify(self, request: web.Request, body: bytes) -> str | None:
        """The access key when the signature is valid, else None."""
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return None
        fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        ak, scope = fields["Credential"].split("/", 1)
        signed = fields["SignedHeaders"].split(";")
        if "host" not in signed or "x-amz-date" not in signed or ak not in self.secrets:
            return None
        stamp = datetime.strptime(request.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        if abs((datetime.now(timezone.utc) - stamp).total_seconds()) > 300 or not scope.startswith(stamp.strftime("%Y%m%d")):
            return None
        good = expected_signature(request, body, self.secrets[ak], signed, scope)
        return ak if hmac.compare_digest(good, fields["Signature"]) else None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        ak = self._verify(request, raw)
        if ak is None:
            self.rejected.append(request.raw_path)
            return web.json_response({"message": "The request signature we calculated does not match the signature you provided."}, status=403, headers={"x-amzn-ErrorType": "InvalidSignatureException"})
        body = json.loads(raw) if raw else None
        self.requests.append(Recorded(request.raw_path, dict(request.headers), body, ak))
        if ak.startswith("status-"):
            code = int(ak.split("-")[1])
            return web.json_response({"message": f"fake bedrock says {code}"}, status=code, headers={"x-amzn-ErrorType": "ThrottlingException"})
        parts = request.raw_path.split("/")  # /model/<id>/<action>
        msg = message_for("plain", parts[2])
        if parts[3] == "invoke":
            return web.json_response(msg)
        response = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream"})
        await response.prepare(request)
        events = stream_events(msg)
        if ak == "throttle":
            events = events[:4]
        for _, data in events:
            payload = json.dumps({"bytes": base64.b64encode(json.dumps(data).encode()).decode(), "p": "abc"}).encode()
            encoded = frame({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}, payload)
            await response.write(encoded[:7])  # split a frame across writes: the decoder must buffer
            await response.write(encoded[7:])
        if ak == "throttle":
            await response.write(frame({":exception-type": "throttlingException", ":content-type": "application/json", ":message-type": "exception"}, b'{"message":"Too many requests"}'))
        await response.write_eof()
        return response
