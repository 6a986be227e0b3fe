"""The one shared upstream HTTP client.

httpx's API on our own lean HTTP/1.1 transport (relay/upstream/lean_transport.py): measured here, httpx's
default transport cost ~2 ms of CPU per call, and aiohttp underneath still added ~1.5 ms to a
stream's first byte. One pooled client per event loop. Network failures are mapped once
into UpstreamError. A channel with a proxy (relay/upstream/proxies.py) goes through httpx's own
transport instead, one pooled client per proxy URL.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator

import httpx
from django.conf import settings

from relay.errors import LocalError, UpstreamError
from relay.upstream import proxies
from relay.upstream.lean_transport import Http11Transport, ResponseBody, UnsafeHeaderValue

log = logging.getLogger("newapi.relay")

# One client per event loop, forgotten with its loop (an id() key could be reused by a new loop).
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)
_transports: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Http11Transport] = (
    weakref.WeakKeyDictionary()
)
_timeout_ext: dict[str, float | None] | None = None


def _timeout() -> httpx.Timeout:
    total = settings.RELAY_TIMEOUT or None
    # The read timeout doubles as the stream idle timeout; streaming code enforces its own too.
    return httpx.Timeout(
        total, connect=10.0, read=total or max(settings.STREAMING_TIMEOUT * 2, 60), pool=None
    )


def _transport() -> Http11Transport:
    loop = asyncio.get_running_loop()
    t = _transports.get(loop)
    if t is None:
        t = _transports[loop] = Http11Transport(max_per_host=settings.UPSTREAM_MAX_CONNECTIONS_PER_HOST)
    return t


def client() -> httpx.AsyncClient:
    """A full httpx client (redirects off, no cookie persistence needs) for admin-side calls."""
    loop = asyncio.get_running_loop()
    c = _clients.get(loop)
    if c is None:
        c = httpx.AsyncClient(transport=_transport(), timeout=_timeout(), follow_redirects=False)
        _clients[loop] = c
    return c


def client_for(proxy: str) -> httpx.AsyncClient:
    """`client()`, or the pooled client through `proxy` (a channel's `proxies.of(channel)`)."""
    return proxies.client(proxy, _timeout()) if proxy else client()


async def send(
    method: str, url: str, headers: dict[str, str], body: bytes, proxy: str = ""
) -> httpx.Response:
    """The relay hot path: one prepared request straight to the pooled transport.

    Skips AsyncClient.send's per-request machinery (auth flow, redirect loop, cookie jar
    extraction), which profiling showed as a sizeable share of a relay request's CPU.
    The caller owns the response and must close it.
    """
    global _timeout_ext
    if _timeout_ext is None:
        _timeout_ext = _timeout().as_dict()
    request = httpx.Request(method, url, headers=headers, content=body, extensions={"timeout": _timeout_ext})
    try:
        if proxy:
            return await client_for(proxy).send(request, stream=True)
        return await _transport().handle_async_request(request)
    except UnsafeHeaderValue as exc:
        # Nothing was sent. Name the header, never its value (it may be a key).
        raise LocalError(
            f"refused to send the upstream request: {exc} (check the channel's key and header settings)",
            status=500,
            type="new_api_error",
            code="invalid_upstream_header",
        ) from None
    except httpx.HTTPError as exc:
        if proxy:  # the proxy's address helps whoever runs it; its credentials stay out of logs
            log.warning(
                "upstream request through proxy %s failed: %s", proxies.redacted(proxy), type(exc).__name__
            )
        raise network_error(exc) from None


def network_error(exc: Exception) -> UpstreamError:
    # Masked like New API: the raw text may contain internal addresses.
    return UpstreamError(
        f"upstream request failed: {type(exc).__name__}",
        status=500,
        type="new_api_error",
        code="do_request_failed",
    )


async def read_body(resp: httpx.Response) -> bytes:
    """The whole upstream answer, the response closed either way; a broken read is a network error."""
    try:
        return await resp.aread()
    except httpx.HTTPError as exc:
        raise network_error(exc) from None
    finally:
        await resp.aclose()


async def body_chunks(resp: httpx.Response) -> AsyncIterator[bytes]:
    """The streamed body as it arrives. Without a content-encoding to undo, read the transport's
    body directly: httpx's byte-stream layers (raw, decoded, re-chunked) cost a few generator hops
    per SSE event on the stream path. Errors come out as httpx errors either way."""
    stream = resp.stream
    if resp.headers.get("content-encoding") or not isinstance(stream, ResponseBody):
        async for chunk in resp.aiter_bytes():
            yield chunk
        return
    read = stream.read
    while chunk := await read():
        yield chunk
