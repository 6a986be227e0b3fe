"""The embedded ledger (no Redis): RedisLedger's interface and trusted rule, with the balances
kept by one owner process (billing/ledger_owner.py) that every process reaches over a Unix socket.

A request costs what it costs with Redis: one pipelined round trip per reserve (none under the
trusted rule) and one per commit, no database work. Everything issued in one loop step goes out
in one write; replies come back in order.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import socket
import threading
import time
import weakref
from collections.abc import Sequence

from asgiref.sync import sync_to_async

from . import ledger
from .ledger import _ERRORS, Account, QuotaError, RedisLedger
from .settlement import Settlement

log = logging.getLogger("newapi.billing")
CONNECT_SECONDS = 30.0
COMMAND_TIMEOUT = 30.0

_owner = None  # this process's Owner, when it is the one
_owner_lock = threading.Lock()


def start_owner() -> bool:
    """Become the ledger owner for this database unless another process is; True if we are."""
    global _owner
    from . import ledger_owner

    with _owner_lock:
        if _owner is not None:
            return True
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(ledger_owner.address())
        except OSError as exc:
            listener.close()
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
        owner = ledger_owner.Owner(listener)  # replays the journal before anyone is answered
        owner.start()
        _owner = owner
        return True


def stop_owner() -> None:
    """Write everything journaled to the database (the serve parent at shutdown)."""
    if _owner is not None:
        _owner.stop()


def _connect() -> socket.socket:
    """A connection to the owner, becoming the owner first when nobody is listening."""
    from .ledger_owner import address

    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(address())
            return sock
        except (ConnectionRefusedError, FileNotFoundError):
            sock.close()
            # Nobody bound, or an owner still replaying its journal (bound, not yet listening).
            if not start_owner() and time.monotonic() > deadline:
                raise ConnectionError("the ledger owner does not answer") from None
            time.sleep(0.01)


def call_sync(line: bytes, start: bool = False) -> bytes | None:
    """One request from synchronous code; None when no owner runs (and `start` is False)."""
    from .ledger_owner import address

    if start:
        sock = _connect()
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(address())
        except (ConnectionRefusedError, FileNotFoundError):
            sock.close()
            return None
    with sock:
        sock.sendall(line)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("the ledger owner closed the connection")
            reply += chunk
        return reply


async def window_admit(specs: Sequence[tuple[int, int, int]], window_ms: int) -> int:
    """Rate windows kept by the owner, shared by every process: the 1-based index of the first
    (id, requests cap, tokens cap) under its caps, its request counted, or 0."""
    line = b"L %d %s\n" % (window_ms, b" ".join(b"%d:%d:%d" % spec for spec in specs))
    return int(await _client().call(line))


async def window_add_tokens(cid: int, tokens: int, window_ms: int) -> None:
    await _client().call(b"K %d %d %d\n" % (window_ms, cid, tokens))


async def recall(name: bytes) -> int:
    """The id the owner remembers under `name` (no spaces or newlines), 0 for none."""
    return int(await _client().call(b"A %s\n" % name))


async def remember(name: bytes, cid: int, seconds: int) -> None:
    await _client().call(b"M %s %d %d\n" % (name, cid, seconds))


def flush() -> None:
    """Return once everything settled so far is in the database."""
    call_sync(b"W\n", start=True)


def credit(kind: bytes, row_id: int, delta: int) -> None:
    """A balance change made in the database outside the relay (no owner running: nothing to do,
    the owner loads balances from the database when it starts)."""
    call_sync(b"%s %d %d\n" % (kind, row_id, delta))


def forget(kind: bytes, row_id: int) -> None:
    call_sync(b"X %s %d\n" % (kind, row_id))


class _Protocol(asyncio.Protocol):
    def __init__(self, client: _Client) -> None:
        self.client = client
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        end = buf.rfind(b"\n") + 1
        self.buf = buf[end:]
        waiting = self.client.waiting
        for line in buf[:end].splitlines():
            if not waiting:
                self.client.drop(ConnectionError("unexpected reply from the ledger owner"))
                return
            future = waiting.popleft()
            if not future.done():
                future.set_result(line)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.client.protocol is self:
            self.client.drop(ConnectionError(f"ledger owner connection lost: {exc or 'closed'}"))


class _Client:
    """One pipelined connection per event loop."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.protocol: _Protocol | None = None
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.connecting: asyncio.Future | None = None

    async def call(self, line: bytes) -> bytes:
        if self.transport is None:
            await self._connect()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append(future)
        self.out.append(line)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            loop.call_soon(self._flush)
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                return await future
        except TimeoutError:
            self.drop(ConnectionError("the ledger owner did not answer"))
            raise ConnectionError("the ledger owner did not answer") from None

    def _flush(self) -> None:
        self.flush_scheduled = False
        if not self.out:
            return
        data, self.out = b"".join(self.out), []
        if self.transport is None or self.transport.is_closing():
            self.drop(ConnectionError("ledger owner connection closed"))
            return
        self.transport.write(data)

    async def _connect(self) -> None:
        if self.connecting is not None:
            await asyncio.shield(self.connecting)
            return
        loop = asyncio.get_running_loop()
        self.connecting = loop.create_future()
        try:
            sock = await sync_to_async(_connect, thread_sensitive=False)()
            sock.setblocking(False)
            protocol = _Protocol(self)
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
            self.transport, self.protocol = transport, protocol
            self.connecting.set_result(None)
        except BaseException as exc:
            self.connecting.set_exception(ConnectionError(f"cannot reach the ledger owner: {exc}"))
            self.connecting.exception()
            raise
        finally:
            self.connecting = None

    def drop(self, exc: Exception) -> None:
        transport, self.transport, self.protocol = self.transport, None, None
        waiting, self.waiting = self.waiting, collections.deque()
        self.out = []
        for future in waiting:
            if not future.done():
                future.set_exception(exc)
        if transport is not None and not transport.is_closing():
            transport.close()


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Client] = weakref.WeakKeyDictionary()


def _client() -> _Client:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = _Client()
    return client


def close_for_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Close the loop's connection (a loop that ends before its process, e.g. in tests)."""
    client = _clients.pop(loop, None)
    if client is not None:
        client.drop(ConnectionError("ledger owner connection closed"))


class LocalLedger(RedisLedger):
    """RedisLedger's trusted rule and bookkeeping; the balances live with the owner."""

    # Hold record ids are Redis's: here the owner counts what each process holds instead.
    async def reserve(self, acct: Account, amount: int, hold_id: str = "") -> int:
        if self._trusted(acct, amount):
            return 0
        reply = await _client().call(
            b"R %d %d %d %d\n" % (acct.user_id, acct.token_id, acct.token_limited, amount)
        )
        parts = reply.split()
        code = int(parts[0])
        if code == 1:
            self._remember(acct, int(parts[1]), int(parts[2]))
            return amount
        self._seen.pop((acct.user_id, acct.token_id), None)
        raise QuotaError(_ERRORS[code], int(parts[1]), amount)

    async def release(self, acct: Account, amount: int, ids: Sequence[str] = (), recorded: int = 0) -> None:
        if amount > 0:
            await _client().call(
                b"F %d %d %d %d\n" % (acct.user_id, acct.token_id, acct.token_limited, amount)
            )

    async def commit(
        self, acct: Account, reserved: int, s: Settlement, ids: Sequence[str] = (), recorded: int = 0
    ) -> int | None:
        # The database never saw the reservation: it must receive the whole charge.
        s.user_delta = s.token_delta = -s.quota
        head = b"C %d %d %d %d %d " % (
            acct.user_id,
            acct.token_id,
            acct.token_limited,
            reserved,
            s.quota - reserved,
        )
        user_balance, token_balance = (await _client().call(head + s.to_json() + b"\n")).split()
        if int(user_balance) >= 0:
            self._remember(acct, int(user_balance), int(token_balance))
            return int(user_balance)
        return None  # the owner had not loaded the balance: unknown


ledger.use_embedded(LocalLedger, credit)


async def user_rate_admit(window_ms: int, user_id: int, total_max: int, success_max: int) -> tuple[int, int]:
    """The owner's per-user request windows (billing/owner_rates.py): (0, ticket) when admitted,
    else (1, 0) at the total cap or (2, 0) at the success cap."""
    parts = (await _client().call(b"Q %d %d %d %d\n" % (window_ms, user_id, total_max, success_max))).split()
    return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0


async def user_rate_done(user_id: int, ticket: int, success: bool) -> None:
    await _client().call(b"%s %d %d\n" % (b"S" if success else b"D", user_id, ticket))
