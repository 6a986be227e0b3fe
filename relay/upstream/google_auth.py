"""Service-account OAuth for Google APIs: an RS256-signed JWT assertion exchanged at the account's
token_uri for an access token (RFC 7523 / developers.google.com "Using OAuth 2.0 for Server to
Server Applications"). Tokens are cached per service account until five minutes before expiry;
one lock per account keeps a burst of requests to one token fetch.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import orjson

from relay.errors import LocalError, UpstreamError
from relay.upstream import http

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
EARLY_REFRESH = 300


@dataclass(slots=True)
class ServiceAccount:
    project_id: str
    client_email: str
    private_key: str
    private_key_id: str
    token_uri: str

    @property
    def cache_key(self) -> str:
        return hashlib.sha256(
            f"{self.client_email}\0{self.private_key}\0{self.token_uri}".encode()
        ).hexdigest()


def parse_service_account(key: str) -> ServiceAccount:
    try:
        data: Any = orjson.loads(key)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not data.get("private_key") or not data.get("client_email"):
        raise LocalError(
            "Vertex AI channel key must be a service-account JSON", status=500, code="invalid_channel_key"
        )
    return ServiceAccount(
        project_id=str(data.get("project_id") or ""),
        client_email=str(data["client_email"]),
        private_key=str(data["private_key"]),
        private_key_id=str(data.get("private_key_id") or ""),
        token_uri=str(data.get("token_uri") or DEFAULT_TOKEN_URI),
    )


def assertion(sa: ServiceAccount, now: int | None = None) -> str:
    """The RS256-signed JWT the token endpoint exchanges for an access token (valid one hour)."""
    now = int(now if now is not None else time.time())
    claims = {"iss": sa.client_email, "scope": SCOPE, "aud": sa.token_uri, "iat": now, "exp": now + 3600}
    headers = {"kid": sa.private_key_id} if sa.private_key_id else None
    try:
        return jwt.encode(claims, sa.private_key, algorithm="RS256", headers=headers)
    except jwt.InvalidKeyError:
        raise LocalError(
            "the service account's private_key is not a PEM RSA key", status=500, code="invalid_channel_key"
        ) from None


_tokens: dict[str, tuple[str, float]] = {}
_locks: dict[str, asyncio.Lock] = {}


async def access_token(sa: ServiceAccount, proxy: str = "") -> str:
    """A cached access token; fetched through `proxy` (the channel's, if any) when due."""
    cached = _tokens.get(sa.cache_key)
    if cached and cached[1] > time.time():
        return cached[0]
    lock = _locks.setdefault(sa.cache_key, asyncio.Lock())
    async with lock:
        cached = _tokens.get(sa.cache_key)
        if cached and cached[1] > time.time():
            return cached[0]
        token, ttl = await fetch_token(sa, proxy)
        _tokens[sa.cache_key] = (token, time.time() + max(ttl - EARLY_REFRESH, 30))
        return token


async def fetch_token(sa: ServiceAccount, proxy: str = "") -> tuple[str, int]:
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion(sa)}
    try:
        resp = await http.client_for(proxy).post(
            sa.token_uri, data=form, headers={"Accept": "application/json"}
        )
    except httpx.HTTPError as exc:
        raise http.network_error(exc) from None
    try:
        data = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        data = {}
    if resp.status_code != 200 or not isinstance(data, dict) or not data.get("access_token"):
        detail = (data.get("error_description") or data.get("error")) if isinstance(data, dict) else None
        # The channel's credentials are wrong: 401, so channel health treats it like a bad key.
        raise UpstreamError(
            f"Vertex AI access token request failed: {detail or resp.status_code}",
            status=401,
            type="upstream_error",
            code="vertex_token_failed",
        )
    return str(data["access_token"]), int(data.get("expires_in") or 3600)
