"""A fake Google OAuth token endpoint and Vertex AI (rawPredict / streamRawPredict for Anthropic,
generateContent / streamGenerateContent for Gemini) in one server on 127.0.0.1.

POST /token verifies the RS256 JWT assertion with the public key registered for its `iss`
(audience, scope and expiry too) and hands out a fresh access token; Vertex paths answer only
to a token it issued. Claude answers come from the fake Anthropic's shapes, Gemini's from the
fake Gemini's.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.fakes.anthropic_upstream import message_for, stream_events
from tests.fakes.gemini_upstream import USAGE
from tests.fakes.openai_upstream import Recorded
from tests.fakes.server import ThreadedServer


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class FakeVertex(ThreadedServer):
    public_keys: dict[str, Any] = field(default_factory=dict)  # client_email → RSA public key
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    token_grants: list[dict[str, Any]] = field(default_factory=list)
    token_refusals: int = 0
    issued: set[str] = field(default_factory=set)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/token", self._token)
        super().add_routes(app)

    def last(self) -> Recorded:
        return self.requests[-1]

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            head, body, sig = str(form.get("assertion")).split(".")
            header, claims = json.loads(_unb64(head)), json.loads(_unb64(body))
            key = self.public_keys[claims["iss"]]
            assert header["alg"] == "RS256"
            key.verify(_unb64(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
            assert claims["aud"] == f"{self.base_url}/token"
            assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
            assert claims["iat"] - 60 <= time.time() < claims["exp"] <= claims["iat"] + 3600
        except (InvalidSignature, KeyError, ValueError, AssertionError):
            self.token_refusals += 1
            return web.json_response({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, status=400)
        token = f"ya29.fake-{next(self._ids)}"
        self.issued.add(token)
        self.token_grants.append({"header": header, "claims": claims})
        return web.json_response({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.issued:
            return web.json_response({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}, status=401)
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.requests.append(Recorded(request.path, dict(request.headers), body, token, request.query_string))
        model, _, action = request.path.rsplit("/", 1)[1].partition(":")
        if action in ("rawPredict", "streamRawPredict"):
            msg = message_for("plain", model)
            if action == "rawPredict":
                return web.json_response(msg)
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for event, data in stream_events(msg):
                await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
            await response.write_eof()
            return response
        parts = [{"text": "Hello from Gemini!"}]
        if action == "generateContent":
            return web.json_response({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}], "usageMetadata": USAGE})
        if action == "streamGenerateContent":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for i, text in enumerate(("Hello", " from Gemini!")):
                event: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}]}
                if i == 1:
                    event["candidates"][0]["finishReason"] = "STOP"
                    event["usageMetadata"] = USAGE
                await response.write(f"data: {json.dumps(event)}\r\n\r\n".encode())
            await response.write_eof()
            return response
        return web.json_response({"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}, status=404)
