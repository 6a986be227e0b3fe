"""The embedded ledger's owner: one process holds every balance in memory and answers the others
over a Unix socket (billing/local_ledger.py is the client side).

Without Redis, the `manage.py serve` parent is the owner; a process started on its own (a single
web worker, a test) becomes the owner when none is listening. The socket is abstract and named
after the database, so binding it is also the lock: one owner per database, released by the
kernel when the owner dies.

Balances are loaded from the database on first use and then changed only here, so every worker
sees the same numbers. The rules are RedisLedger's scripts': a reserve checks and decrements
atomically, a commit applies charge − held and queues the settlement (here: the journal, written
before the answer), credits change a balance only once it is loaded. Requests are lines:

    R uid tid limited amount               -> 1 ubal tbal | code balance  (codes as in billing.ledger)
    C uid tid limited held diff settlement -> ubal tbal  (-1 when not loaded)
    F uid tid limited amount               -> 1  (release)
    U uid delta | T tid delta       -> 1           (credit from outside the relay)
    X u|t id                        -> 1           (forget: a new or deleted row)
    W                               -> 1           (after everything journaled so far is in the DB)
    L window_ms id:rpm:tpm ...      -> i           (rate windows: the first id under its limits, its
                                                    request counted; 1-based, 0 when none is)
    K window_ms id tokens           -> 1           (tokens into an id's token window)
    A name                          -> id          (the id remembered under `name`, 0 for none)
    M name id seconds               -> 1           (remember `id` under `name` for `seconds`)
    Q … | S … | D …                 ->             (per-user model request limits: owner_rates.py)

What each process holds is counted: when a worker process dies with requests in flight, its
holds go back to the balances (what it had not committed was never answered).
"""

from __future__ import annotations

import hashlib
import logging
import os
import selectors
import socket
import struct
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connections

from .journal import Applier, Journal
from .owner_rates import UserRates

log = logging.getLogger("newapi.billing")
DEAD_CHECK_SECONDS = 0.5


def address() -> str:
    """The abstract socket name for this database (the same in every process that shares it)."""
    db = connections["default"].settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        ident = "sqlite:" + os.path.realpath(str(db["NAME"]))
    else:
        ident = f"{db['ENGINE']}:{db.get('HOST')}:{db.get('PORT')}:{db['NAME']}"
    return "\0newapi-ledger-" + hashlib.sha1(ident.encode()).hexdigest()[:20]


def journal_dir() -> Path:
    db = connections["default"].settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return Path(os.path.realpath(str(db["NAME"])) + ".ledger")
    return Path(settings.DATA_DIR) / ("ledger-" + address()[15:])


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


class _Conn:
    __slots__ = ("flush_waiting", "inbuf", "out", "pid", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = b""
        self.out = bytearray()
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        self.pid = struct.unpack("3i", creds)[0]
        self.flush_waiting = False


class Owner:
    def __init__(self, listener: socket.socket) -> None:
        from .balances import load_token_balance, load_user_balance

        self.load_user = load_user_balance
        self.load_token = load_token_balance
        self.listener = listener
        self.users: dict[int, int] = {}
        self.tokens: dict[int, int] = {}
        self.held: dict[tuple[int, int, int, bool], int] = {}  # (pid, uid, tid, limited) -> held now
        self.windows: dict[tuple[bytes, int], list[float]] = {}  # (kind, id) -> [count, ends]
        self.remembered: dict[bytes, tuple[int, float]] = {}  # name -> (id, until)
        self.rates = UserRates()
        self.applier = Applier(journal_dir())
        self.applier.apply_available()  # replay what the last owner journaled but did not write
        self.journal = Journal(self.applier.directory, self.applier.segment)
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.flushes: list[_Conn] = []  # waiting for the applier
        self.flush_lock = threading.Lock()
        self.applied_flushes: list[_Conn] = []
        self.watched: set[int] = set()  # pids that closed a connection: are they gone?
        self.stop_event = threading.Event()
        self.apply_now = threading.Event()

    # -- threads ------------------------------------------------------------------------
    def start(self) -> None:
        # The writer thread holds the GIL while it builds a batch; a request arriving meanwhile
        # waits up to the switch interval (5 ms by default) before this thread may answer it.
        sys.setswitchinterval(0.0005)
        self.listener.listen(256)
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        threading.Thread(target=self._serve, name="ledger-owner", daemon=True).start()
        self.applier_thread = threading.Thread(target=self._apply_loop, name="ledger-writer", daemon=True)
        self.applier_thread.start()

    def stop(self) -> None:
        """Write what is journaled (the serve parent calls this after its workers exited)."""
        self.stop_event.set()
        self.apply_now.set()
        self.applier_thread.join(30)

    def _apply_loop(self) -> None:
        interval = max(settings.BATCH_UPDATE_INTERVAL, 0.05)
        while True:
            self.apply_now.wait(interval)
            self.apply_now.clear()
            stopping = self.stop_event.is_set()
            with self.flush_lock:
                waiting, self.flushes = self.flushes, []
            try:
                close_old_connections()
                self.applier.apply_available()
            except Exception:
                log.exception("ledger journal could not be applied; retrying")
                connections.close_all()
                with self.flush_lock:
                    self.flushes = waiting + self.flushes
                if stopping:
                    return
                time.sleep(0.2)
                continue
            if waiting:
                with self.flush_lock:
                    self.applied_flushes.extend(waiting)
                self.wake_w.send(b"x")
            if stopping:
                return

    def _serve(self) -> None:
        select = self.selector.select
        while True:
            for key, mask in select(DEAD_CHECK_SECONDS if self.watched else None):
                if key.data is None:
                    self._accept()
                elif key.data == "wake":
                    self._flushed()
                else:
                    try:
                        if mask & selectors.EVENT_READ:
                            self._read(key.data)
                        if mask & selectors.EVENT_WRITE and key.data.sock.fileno() != -1:
                            self._send(key.data)
                    except Exception:  # a bad request (or a failed balance load) ends that connection only
                        log.exception("ledger owner: request failed; closing the connection")
                        if key.data.sock.fileno() != -1:
                            self._close(key.data)
            if self.watched:
                self._release_orphans()

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, _Conn(sock))

    def _flushed(self) -> None:
        try:
            self.wake_r.recv(4096)
        except BlockingIOError:
            pass
        with self.flush_lock:
            done, self.applied_flushes = self.applied_flushes, []
        for conn in done:
            conn.flush_waiting = False
            conn.out += b"1\n"
            self._send(conn)

    # -- requests -----------------------------------------------------------------------
    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        buf = conn.inbuf + data
        end = buf.rfind(b"\n") + 1
        conn.inbuf = buf[end:]
        if not end:
            return
        journal: list[bytes] = []
        try:
            self._handle(conn, buf[:end], journal)
        finally:
            if journal:  # on file before any of these commits is answered
                self.journal.append(journal)
        self._send(conn)

    def _handle(self, conn: _Conn, lines: bytes, journal: list[bytes]) -> None:
        out = conn.out
        for line in lines.splitlines():
            op = line[:1]
            if op == b"C":
                out += self._commit(conn, line, journal)
            elif op == b"R":
                out += self._reserve(conn, line)
            elif op == b"F":
                _, uid, tid, limited, amount = line.split()
                self._unhold(conn.pid, int(uid), int(tid), limited == b"1", int(amount))
                self._add(int(uid), int(tid), limited == b"1", int(amount))
                out += b"1\n"
            elif op == b"L":
                out += self._admit(line)
            elif op == b"K":
                _, window_ms, cid, tokens = line.split()
                self._window(b"t", int(cid), int(window_ms))[0] += int(tokens)
                out += b"1\n"
            elif op == b"A":
                found = self.remembered.get(line.split()[1])
                out += b"%d\n" % (found[0] if found is not None and found[1] > time.monotonic() else 0)
            elif op == b"M":
                self._remember(line)
                out += b"1\n"
            elif op == b"Q":
                out += self.rates.check(line)
            elif op == b"S":
                out += self.rates.succeeded(line)
            elif op == b"D":
                out += self.rates.dropped(line)
            elif op == b"W":
                conn.flush_waiting = True
                with self.flush_lock:
                    self.flushes.append(conn)
                self.apply_now.set()
            else:
                out += self._admin(line)

    def _reserve(self, conn: _Conn, line: bytes) -> bytes:
        _, uid_s, tid_s, limited_s, amount_s = line.split()
        uid, tid, amount, limited = int(uid_s), int(tid_s), int(amount_s), limited_s == b"1"
        u = self.users.get(uid)
        if u is None:
            u = self.users[uid] = self.load_user(uid)
        t = -1
        if limited:
            t = self.tokens.get(tid)  # type: ignore[assignment]
            if t is None:
                t = self.tokens[tid] = self.load_token(tid)
            if t <= 0:
                return b"-5 %d\n" % t
        if u <= 0:
            return b"-3 %d\n" % u
        if u < amount:
            return b"-4 %d\n" % u
        if limited and t < amount:
            return b"-6 %d\n" % t
        if amount > 0:
            u = self.users[uid] = u - amount
            if limited:
                t = self.tokens[tid] = t - amount
            key = (conn.pid, uid, tid, limited)
            self.held[key] = self.held.get(key, 0) + amount
        return b"1 %d %d\n" % (u, t)

    def _commit(self, conn: _Conn, line: bytes, journal: list[bytes]) -> bytes:
        head = line.split(b" ", 6)
        uid, tid, limited, held, diff = (
            int(head[1]),
            int(head[2]),
            head[3] == b"1",
            int(head[4]),
            int(head[5]),
        )
        if held:
            self._unhold(conn.pid, uid, tid, limited, held)
        u = self.users.get(uid)
        if u is not None:
            u = self.users[uid] = u - diff
        t = None
        if limited:
            t = self.tokens.get(tid)
            if t is not None:
                t = self.tokens[tid] = t - diff
        journal.append(head[6] + b"\n")
        return b"%d %d\n" % (-1 if u is None else u, -1 if t is None else t)

    def _unhold(self, pid: int, uid: int, tid: int, limited: bool, amount: int) -> None:
        key = (pid, uid, tid, limited)
        left = self.held.get(key, 0) - amount
        if left > 0:
            self.held[key] = left
        else:
            self.held.pop(key, None)

    def _add(self, uid: int, tid: int, limited: bool, amount: int) -> None:
        if uid in self.users:
            self.users[uid] += amount
        if limited and tid in self.tokens:
            self.tokens[tid] += amount

    def _window(self, kind: bytes, cid: int, window_ms: int) -> list[float]:
        """The id's current window of `kind` (one opens with its first use and lasts window_ms)."""
        now = time.monotonic()
        window = self.windows.get((kind, cid))
        if window is None or window[1] <= now:
            if len(self.windows) > 100_000:  # ids come from the channels table: prune the spent ones
                self.windows = {k: w for k, w in self.windows.items() if w[1] > now}
            window = self.windows[(kind, cid)] = [0, now + window_ms / 1000]
        return window

    def _remember(self, line: bytes) -> None:
        _, name, cid, seconds = line.split()
        now = time.monotonic()
        self.remembered.pop(name, None)  # re-inserted last: the oldest stay first
        self.remembered[name] = (int(cid), now + int(seconds))
        if len(self.remembered) > 200_000:
            self.remembered = {k: v for k, v in self.remembered.items() if v[1] > now}
            while len(self.remembered) > 150_000:
                del self.remembered[next(iter(self.remembered))]

    def _admit(self, line: bytes) -> bytes:
        parts = line.split()
        window_ms = int(parts[1])
        for i, spec in enumerate(parts[2:], 1):
            cid, rpm, tpm = (int(x) for x in spec.split(b":"))
            if tpm and self._window(b"t", cid, window_ms)[0] >= tpm:
                continue
            if rpm:
                requests = self._window(b"r", cid, window_ms)
                if requests[0] >= rpm:
                    continue
                requests[0] += 1
            return b"%d\n" % i
        return b"0\n"

    def _admin(self, line: bytes) -> bytes:
        parts = line.split()
        op = parts[0]
        if op == b"U" and int(parts[1]) in self.users:
            self.users[int(parts[1])] += int(parts[2])
        elif op == b"T" and int(parts[1]) in self.tokens:
            self.tokens[int(parts[1])] += int(parts[2])
        elif op == b"X":
            (self.users if parts[1] == b"u" else self.tokens).pop(int(parts[2]), None)
        elif op not in (b"U", b"T"):
            return b"-9 0\n"
        return b"1\n"

    def _send(self, conn: _Conn) -> None:
        if not conn.out:
            return
        try:
            sent = conn.sock.send(conn.out)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._close(conn)
            return
        del conn.out[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out else 0)
        if self.selector.get_key(conn.sock).events != events:
            self.selector.modify(conn.sock, events, conn)

    def _close(self, conn: _Conn) -> None:
        self.selector.unregister(conn.sock)
        conn.sock.close()
        if conn.flush_waiting:
            with self.flush_lock:
                if conn in self.flushes:
                    self.flushes.remove(conn)
        if any(key[0] == conn.pid for key in self.held):
            self.watched.add(conn.pid)
            self._release_orphans()

    def _release_orphans(self) -> None:
        """Give back the holds of a process that is gone (what it had not committed was never
        answered); a live one (a test whose event loop closed, say) may still settle them."""
        dead = {pid for pid in self.watched if not _pid_alive(pid)}
        if not dead:
            return
        self.watched -= dead
        for key in [key for key in self.held if key[0] in dead]:
            self._add(key[1], key[2], key[3], self.held.pop(key))
