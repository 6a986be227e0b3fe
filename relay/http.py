"""The one shared upstream HTTP client.

httpx's API on aiohttp's transport: measured here, httpx's default transport cost ~2 ms of CPU
per call, the aiohttp transport a fraction of that (issue 7). One pooled client per event loop.
Network failures are mapped once into UpstreamError.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx
from django.conf import settings
from httpx_aiohttp import AiohttpTransport

from .errors import UpstreamError

# One client per event loop, forgotten with its loop (an id() key could be reused by a new loop).
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def _timeout() -> httpx.Timeout:
    total = settings.RELAY_TIMEOUT or None
    # The read timeout doubles as the stream idle timeout; streaming code enforces its own too.
    return httpx.Timeout(total, connect=10.0, read=total or max(settings.STREAMING_TIMEOUT * 2, 60), pool=None)


def client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    c = _clients.get(loop)
    if c is None:
        import aiohttp

        transport = AiohttpTransport(
            client=lambda: aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=True,
            )
        )
        c = httpx.AsyncClient(transport=transport, timeout=_timeout(), follow_redirects=False)
        _clients[loop] = c
    return c


def network_error(exc: Exception) -> UpstreamError:
    # Masked like New API: the raw text may contain internal addresses.
    return UpstreamError(
        f"upstream request failed: {type(exc).__name__}",
        status=500,
        type="new_api_error",
        code="do_request_failed",
    )
