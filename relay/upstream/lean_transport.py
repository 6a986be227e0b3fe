"""A lean HTTP/1.1 client transport for httpx: asyncio protocols, a keep-alive pool, no extra tasks.

Why not aiohttp underneath: on a stream, aiohttp took ~1.9 ms (p50 at 10 streams) from the call
to the upstream's response head, while a plain asyncio protocol on the same loop had it in
~0.3 ms, and each SSE event passed through aiohttp's StreamReader and httpx's byte-stream layers.
Here each read is parsed in data_received (by llhttp, relay/upstream/lean_response.py), the body is handed
out as it arrives, and httpx's API stays the one the rest of the code uses (this is an
httpx.AsyncBaseTransport).

Scope: HTTP/1.1 (and 1.0 answers) over TCP or TLS, Content-Length / chunked / until-close bodies,
keep-alive reuse, connect, read and pool timeouts, at most `max_per_host` connections to one
host (requests past that wait for one in turn). No proxies, no HTTP/2 (nothing in the relay uses
them).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import httpx

from relay.upstream.lean_response import MAX_HEAD, ResponseBody, ResponseParse

__all__ = ["MAX_HEAD", "Http11Transport", "ResponseBody", "UnsafeHeaderValue"]

HIGH_WATER = 256 * 1024  # stop reading from the socket when this much body is unread
KEEPALIVE_EXPIRY = 20.0  # seconds an idle pooled connection is trusted
MAX_IDLE_PER_HOST = 256
MAX_PER_HOST = 256  # default cap of open connections to one (scheme, host, port)

_Key = tuple[str, str, int]
_SLOT = object()  # handed to a waiter: a connection slot came free, open a new connection in it


class _Connection(asyncio.Protocol):
    """One upstream connection: parses what arrives and wakes the single reader waiting on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.response: ResponseParse | None = None  # the answer being read; None while pooled
        self.last_response: ResponseParse | None = None
        self.stray = False  # bytes came while no answer was expected: never reused
        self.eof = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future | None = None
        self.paused = False
        self.write_waiter: asyncio.Future | None = None
        self.write_paused = False
        self.last_data = 0.0
        self.idle_since = 0.0
        self.read_timeout: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.received_any = False  # for this request: did any byte come back?
        self.release_slot: Callable[[], None] | None = None  # frees this connection's pool slot once

    # -- asyncio.Protocol --
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        self.last_data = self.loop.time()
        response = self.response
        if response is None:
            self.stray = True
            return
        try:
            response.feed(data)
        except httpx.RemoteProtocolError as exc:
            if self.error is None:
                self.error = exc
        if response.unread > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None and self.error is None:
            self.error = exc
        self._wake()
        w = self.write_waiter
        if w is not None and not w.done():
            w.set_exception(httpx.WriteError(str(exc or "connection closed")))
        self._free_slot()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        w = self.write_waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- reader side --
    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _free_slot(self) -> None:
        release = self.release_slot
        if release is not None:
            self.release_slot = None
            release()

    @property
    def closed(self) -> bool:
        return self.eof or self.stray or self.transport is None or self.transport.is_closing()

    async def wait_data(self) -> None:
        """Wait until more bytes (or EOF/error) arrive; raises ReadTimeout after read_timeout idle."""
        if self.eof:
            return
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        self.waiter = self.loop.create_future()
        if self.read_timeout is not None and self.timer is None:
            self.timer = self.loop.call_at(self.last_data + self.read_timeout, self._check_idle)
        try:
            await self.waiter
        finally:
            self.waiter = None

    def _check_idle(self) -> None:
        self.timer = None
        w = self.waiter
        if w is None or w.done() or self.read_timeout is None:
            return  # re-armed at the next wait
        due = self.last_data + self.read_timeout
        if self.loop.time() >= due:
            w.set_exception(httpx.ReadTimeout("upstream read timed out"))
        else:
            self.timer = self.loop.call_at(due, self._check_idle)

    def start_request(self, read_timeout: float | None, head_only: bool) -> ResponseParse:
        self.read_timeout = read_timeout
        self.last_data = self.loop.time()
        self.received_any = False
        response = self.last_response
        if response is not None and response.parser_reusable:
            response.reset(head_only)  # saves building llhttp's parser and its callbacks again
        else:
            response = self.last_response = ResponseParse(head_only)
        self.response = response
        return response

    async def drain(self) -> None:
        if self.write_paused:
            self.write_waiter = self.loop.create_future()
            try:
                await self.write_waiter
            finally:
                self.write_waiter = None

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.close()
        self.eof = True
        self._free_slot()

    def raise_if_failed(self) -> None:
        error = self.error
        if error is None:
            return
        if isinstance(error, httpx.TransportError):
            raise type(error)(str(error))  # a fresh one each time: re-raising would grow its traceback
        raise httpx.ReadError(str(error) or type(error).__name__)


class Http11Transport(httpx.AsyncBaseTransport):
    """Pooled HTTP/1.1 connections for one event loop, at most `max_per_host` open to one host.

    Past the cap a request waits, first come first served, for a connection to come back to the
    pool (it gets that one) or to close (it opens one in its place); httpx's pool timeout bounds
    the wait. `max_per_host=0` means no cap.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None, max_per_host: int = MAX_PER_HOST) -> None:
        self._ssl = ssl_context
        self._max_per_host = max_per_host if max_per_host > 0 else 1 << 62
        self._idle: dict[_Key, deque[_Connection]] = {}
        self._open: dict[_Key, int] = {}
        self._waiters: dict[_Key, deque[asyncio.Future]] = {}

    @property
    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    def open_connections(self, key: _Key) -> int:
        return self._open.get(key, 0)

    def put_back(self, key: _Key, conn: _Connection) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        conn.response = None
        waiters = self._waiters.get(key)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)  # straight to the request that has waited longest
                return
        idle = self._idle.setdefault(key, deque())
        if len(idle) >= MAX_IDLE_PER_HOST:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def _free_slot(self, key: _Key) -> None:
        waiters = self._waiters.get(key)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(_SLOT)  # the slot passes on: the open count stays
                return
        self._open[key] -= 1

    def _take_idle(self, key: _Key) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # most recently used first: the likeliest to be still open
            if conn.closed or now - conn.idle_since > KEEPALIVE_EXPIRY:
                conn.close()
                continue
            return conn
        return None

    async def _acquire(self, key: _Key, timeouts: dict) -> tuple[_Connection, bool]:
        """A connection to `key` and whether it was reused, within the per-host cap."""
        while True:
            conn = self._take_idle(key)
            if conn is not None:
                return conn, True
            if self._open.get(key, 0) < self._max_per_host:
                self._open[key] = self._open.get(key, 0) + 1
                break
            got = await self._wait_turn(key, timeouts.get("pool"))
            if got is _SLOT:
                break
            if not got.closed:
                return got, True
            got.release_slot = None  # dead on arrival: open a new connection in its slot
            got.close()
            break
        try:
            conn = await self._connect(key, timeouts.get("connect"))
        except BaseException:
            self._free_slot(key)
            raise
        conn.release_slot = partial(self._free_slot, key)
        if conn.eof:
            conn.close()  # lost before the slot was attached
            return await self._acquire(key, timeouts)
        return conn, False

    async def _wait_turn(self, key: _Key, timeout: float | None):
        waiter = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(key, deque())
        waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._give_back(key, waiter.result())  # handed over just as we gave up
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout(f"no connection to {key[1]}:{key[2]} came free in time") from None
            raise

    def _give_back(self, key: _Key, got) -> None:
        if got is _SLOT:
            self._free_slot(key)
        else:
            self.put_back(key, got)

    async def _connect(self, key: _Key, timeout: float | None) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        kwargs: dict[str, Any] = {}
        if scheme == "https":
            kwargs = {"ssl": self.ssl_context, "server_hostname": host}
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(lambda: _Connection(loop), host, port, **kwargs)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        return conn

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}")
        key = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        timeouts = request.extensions.get("timeout") or {}
        head, body, body_stream = _serialise(request)
        while True:
            conn = self._take_idle(key)
            reused = conn is not None
            if conn is None:
                conn, reused = await self._acquire(key, timeouts)
            try:
                return await self._exchange(key, conn, request, head, body, body_stream, timeouts.get("read"))
            except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
                # A pooled connection the server had just closed: safe to resend when nothing came back.
                if reused and not conn.received_any and body_stream is None:
                    conn.close()
                    continue
                conn.close()
                raise
            except BaseException:
                conn.close()
                raise

    async def _exchange(
        self,
        key: _Key,
        conn: _Connection,
        request: httpx.Request,
        head: bytes,
        body: bytes,
        body_stream,
        read_timeout: float | None,
    ) -> httpx.Response:
        response = conn.start_request(read_timeout, request.method == "HEAD")
        transport = conn.transport
        if conn.closed or transport is None:
            raise httpx.WriteError("connection closed")
        if body_stream is None:
            transport.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                transport.write(body)
                await conn.drain()
        else:
            transport.write(head)
            await _write_stream(conn, body_stream)
        while not response.head_done:
            conn.raise_if_failed()
            if conn.eof:
                raise httpx.RemoteProtocolError("upstream closed the connection without answering")
            await conn.wait_data()
        stream = ResponseBody(self, key, conn, response)
        return httpx.Response(
            response.status,
            headers=response.headers,
            stream=stream,
            extensions={
                "http_version": b"HTTP/" + response.version.encode(),
                "reason_phrase": response.reason,
            },
        )


class UnsafeHeaderValue(httpx.LocalProtocolError):
    """A header value with CR/LF (a channel key, a configured header): it would split the request."""

    def __init__(self, name: str) -> None:
        super().__init__(f"header {name} contains a line break")
        self.header = name


def _serialise(request: httpx.Request) -> tuple[bytes, bytes, tuple[Any, bool] | None]:
    """The request head, and the body as bytes (or its stream when it is not in memory)."""
    url = request.url
    target = url.raw_path or b"/"
    lines = [request.method.encode() + b" " + target + b" HTTP/1.1"]
    has_length = False
    chunked = False
    for name, value in request.headers.raw:
        lname = name.lower()
        if lname == b"content-length":
            has_length = True
        elif lname == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        if b"\r" in value or b"\n" in value:
            raise UnsafeHeaderValue(name.decode("latin-1"))
        lines.append(name + b": " + value)
    try:
        body = request.content  # in memory for bytes/JSON/urlencoded bodies
        stream = None
    except httpx.RequestNotRead:
        body = b""
        stream = request.stream
        if not has_length and not chunked:
            lines.append(b"Transfer-Encoding: chunked")
            chunked = True
    return b"\r\n".join(lines) + b"\r\n\r\n", body, (stream, chunked) if stream is not None else None


async def _write_stream(conn: _Connection, body_stream: tuple[Any, bool]) -> None:
    stream, chunked = body_stream
    transport = cast(asyncio.Transport, conn.transport)  # the caller checked it is open
    async for piece in stream:
        if not piece:
            continue
        if conn.closed:
            raise httpx.WriteError("connection closed while sending the body")
        if chunked:
            transport.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
        else:
            transport.write(piece)
        await conn.drain()
    if chunked:
        transport.write(b"0\r\n\r\n")
