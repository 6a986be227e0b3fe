"""Per-channel upstream proxies (`channel.setting.proxy`: an http://, https:// or socks5:// URL).

A channel with a proxy sends every upstream call through httpx's own proxy support; channels
without one stay on the lean transport (relay/upstream/http.py). One pooled client per proxy URL
and event loop, at most MAX_CLIENTS of them (least recently used closed first), never one per
request. A proxy URL may carry a user name and password: log and show it only through `redacted`.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

SCHEMES = ("http", "https", "socks5", "socks5h")
MAX_CLIENTS = 32

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OrderedDict[str, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)
_closing: set[asyncio.Task[None]] = set()  # evicted clients being closed (a task needs a reference)


def of(channel: Any) -> str:
    """The channel's proxy URL, or "" (no proxy). `channel` is a ChannelInfo (its parsed setting)."""
    setting = channel.setting
    if not setting:
        return ""
    proxy = setting.get("proxy")
    return proxy.strip() if isinstance(proxy, str) else ""


def problem(url: str) -> str | None:
    """Why `url` cannot be a channel proxy, or None when it can ("" means none)."""
    url = url.strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "proxy must be a URL such as http://host:port or socks5://host:port"
    if parts.scheme.lower() not in SCHEMES:
        return f"proxy scheme must be one of {', '.join(s + '://' for s in SCHEMES)}"
    if not parts.hostname:
        return "proxy URL has no host"
    if port == 0:
        return "proxy URL has an invalid port"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "proxy URL must be scheme://[user:password@]host[:port] only"
    return None


def redacted(url: str) -> str:
    """The URL without its user name and password (for logs and error messages)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid proxy URL>"
    return f"{parts.scheme}://{host}{port}"


def client(url: str, timeout: httpx.Timeout) -> httpx.AsyncClient:
    """The pooled client that goes through proxy `url` (validated when the channel was saved)."""
    loop = asyncio.get_running_loop()
    pool = _clients.get(loop)
    if pool is None:
        pool = _clients[loop] = OrderedDict()
    c = pool.get(url)
    if c is not None:
        pool.move_to_end(url)
        return c
    # trust_env off: the channel's proxy, not the process's HTTP(S)_PROXY, decides the route.
    c = pool[url] = httpx.AsyncClient(proxy=url, timeout=timeout, follow_redirects=False, trust_env=False)
    while len(pool) > MAX_CLIENTS:
        _url, old = pool.popitem(last=False)
        task = loop.create_task(_close(old))
        _closing.add(task)
        task.add_done_callback(_closing.discard)
    return c


async def _close(c: httpx.AsyncClient) -> None:
    # Requests already on the evicted client get a while to finish before its connections close.
    with contextlib.suppress(Exception):
        await asyncio.sleep(120)
        await c.aclose()


def of_row(row: Any) -> str:
    """The proxy URL of a Channel row (its setting still JSON text)."""
    try:
        setting = orjson.loads(row.setting or "{}")
    except orjson.JSONDecodeError:
        return ""
    proxy = setting.get("proxy") if isinstance(setting, dict) else None
    return proxy.strip() if isinstance(proxy, str) else ""


def sync_client(url: str, timeout: float, opened: dict[str, httpx.Client]) -> httpx.Client:
    """A blocking client through `url`, kept in `opened` (the caller closes them) for one batch of work."""
    c = opened.get(url)
    if c is None:
        c = opened[url] = httpx.Client(proxy=url, timeout=timeout, follow_redirects=False, trust_env=False)
    return c
