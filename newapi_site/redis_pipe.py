"""One pipelined Redis connection per event loop, for the relay's per-request ledger scripts.

redis-py's asyncio pool takes a connection per command and checks it first with a zero-timeout
read, which yields to the loop (and arms a timer) before anything is written. Here a command is
appended to an output buffer and its future to a queue; everything issued in one loop step goes
out in one write, and replies (in order, per the Redis protocol) settle the futures in turn.
A lost connection fails the commands in flight; the next command reconnects.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import socket
import ssl
import weakref
from typing import Any

import hiredis
from redis.connection import parse_url
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError

COMMAND_TIMEOUT = 30.0  # seconds; redis-py's BlockingConnectionPool used the same bound


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: PipelinedRedis) -> None:
        self.owner = owner
        self.reader = hiredis.Reader()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.owner.waiting
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            if not waiting:  # a reply nobody asked for: the stream is out of step, start over
                self.owner.drop(ConnectionError("unexpected reply from Redis"))
                return
            future = waiting.popleft()
            if future.done():  # its caller gave up (cancelled or timed out)
                continue
            if isinstance(reply, hiredis.ReplyError):
                text = str(reply)
                future.set_exception(
                    NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text)
                )
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner.transport is self.transport:  # not an old connection already replaced
            self.owner.drop(ConnectionError(f"Redis connection lost: {exc or 'closed'}"))


class PipelinedRedis:
    def __init__(self, url: str) -> None:
        opts = parse_url(url)
        self.ssl = url.startswith("rediss://")
        self.host = opts.get("host", "127.0.0.1")
        self.port = int(opts.get("port", 6379))
        self.path = opts.get("path")  # unix:// URLs
        setup: list[tuple[Any, ...]] = []
        if opts.get("password"):
            user = opts.get("username")
            setup.append(("AUTH", user, opts["password"]) if user else ("AUTH", opts["password"]))
        if int(opts.get("db", 0) or 0):
            setup.append(("SELECT", int(opts["db"])))
        self.setup = setup
        self.transport: asyncio.Transport | None = None
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.connecting: asyncio.Future | None = None

    async def execute(self, *args: Any) -> Any:
        if self.transport is None:
            await self._connect()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append(future)
        self.out.append(hiredis.pack_command(args))
        if not self.flush_scheduled:
            self.flush_scheduled = True
            loop.call_soon(self._flush)
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                return await future
        except builtins.TimeoutError:  # the builtin one; redis-py's TimeoutError is another class
            self.drop(TimeoutError("Redis did not answer"))
            raise TimeoutError("Redis did not answer") from None

    def _flush(self) -> None:
        self.flush_scheduled = False
        if not self.out:
            return
        data, self.out = b"".join(self.out), []
        if self.transport is None or self.transport.is_closing():
            self.drop(ConnectionError("Redis connection closed"))
            return
        self.transport.write(data)

    async def _connect(self) -> None:
        if self.connecting is not None:
            await asyncio.shield(self.connecting)
            return
        loop = asyncio.get_running_loop()
        self.connecting = loop.create_future()
        try:
            if self.path:
                transport, _ = await loop.create_unix_connection(lambda: _Protocol(self), self.path)
            else:
                transport, _ = await loop.create_connection(
                    lambda: _Protocol(self),
                    self.host,
                    self.port,
                    ssl=ssl.create_default_context() if self.ssl else None,
                )
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.transport = transport
            for command in self.setup:  # AUTH / SELECT go first on the new connection
                future = loop.create_future()
                self.waiting.append(future)
                transport.write(hiredis.pack_command(command))
                await future
            self.connecting.set_result(None)
        except BaseException as exc:
            self.drop(ConnectionError(f"cannot connect to Redis: {exc}"))
            self.connecting.set_exception(ConnectionError(f"cannot connect to Redis: {exc}"))
            self.connecting.exception()  # retrieved here, so an unawaited failure is not logged
            raise
        finally:
            self.connecting = None

    def drop(self, exc: Exception) -> None:
        """Forget the connection and fail whatever was waiting on it."""
        transport, self.transport = self.transport, None
        waiting, self.waiting = self.waiting, collections.deque()
        self.out = []
        for future in waiting:
            if not future.done():
                future.set_exception(exc)
        if transport is not None and not transport.is_closing():
            transport.close()

    def close(self) -> None:
        self.drop(ConnectionError("Redis connection closed"))


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PipelinedRedis] = weakref.WeakKeyDictionary()


def pipelined(url: str) -> PipelinedRedis:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = PipelinedRedis(url)
    return client


def close_for_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Close the loop's connection (a loop that ends before its process, e.g. in tests)."""
    client = _clients.pop(loop, None)
    if client is not None:
        client.close()
