"""Reading one HTTP/1.x response for the lean transport: llhttp (httptools) parses, we frame.

llhttp does the byte-level work (status line, headers, chunk sizes, CRLFs); this module keeps what
the transport needs from its callbacks: the head, the body pieces not yet handed out, and whether
the connection may carry another request afterwards. What llhttp accepts but we do not: a second
Content-Length (even an equal one) and Content-Length next to Transfer-Encoding, which let two
parties disagree on where a response ends. A head past MAX_HEAD, or framing bytes (chunk lines,
trailers) past it with no body between them, are refused before they are buffered further.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import httptools
import httpx

# The pool's key and connection types belong to lean_transport, which imports this module: here
# they are opaque values handed back to the pool.
_Key = Any
_Connection = Any

MAX_HEAD = 64 * 1024  # bytes of response head (interim answers included), and of framing between bodies


class _Refused(Exception):
    """Raised inside an llhttp callback; comes back out of feed_data as its context."""


class _Pool(Protocol):
    def put_back(self, key: _Key, conn: _Connection) -> None: ...


class ResponseParse:
    """llhttp callbacks for one response (and any 1xx answers before it)."""

    __slots__ = (
        "chunked",
        "coded",
        "complete",
        "extra",
        "failed",
        "got",
        "head_bytes",
        "head_done",
        "head_only",
        "headers",
        "length",
        "parser",
        "pending",
        "pieces",
        "reason",
        "reusable",
        "stalled",
        "status",
        "unread",
        "version",
    )

    def __init__(self, head_only: bool = False) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.reset(head_only)

    def reset(self, head_only: bool) -> None:
        """Ready for the next response on the same connection (llhttp's own state carries over)."""
        self.head_only = head_only  # a HEAD answer: its Content-Length announces no body
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.version = "1.1"
        self.length: bytes | None = None
        self.coded = False  # a Transfer-Encoding header was seen
        self.chunked = False  # ... and chunked is its last coding
        self.head_done = False
        self.complete = False
        self.reusable = False
        self.extra = False  # bytes past the end of the response: the connection is not reused
        self.failed = False
        self.pieces: list[bytes] = []  # body not yet handed out
        self.unread = 0
        self.got = 0
        self.head_bytes = 0
        self.stalled = 0
        self.pending = bytearray()  # head_only: bytes up to the end of the head

    @property
    def parser_reusable(self) -> bool:
        """llhttp saw exactly one whole message: it can parse the next one as it stands."""
        return self.reusable and not (self.head_only or self.extra or self.failed)

    # -- llhttp callbacks --
    def on_message_begin(self) -> None:
        if self.head_done:
            self.extra = True

    def on_status(self, reason: bytes) -> None:
        self.reason += reason  # may come in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head_done:
            return  # a trailer: nothing here reads them
        n = len(name)
        lname = name.lower() if n == 14 or n == 17 else b""
        if lname == b"content-length":
            if self.length is not None:
                raise _Refused("duplicate Content-Length")
            if self.coded:
                raise _Refused("Content-Length together with Transfer-Encoding")
            self.length = value
        elif lname == b"transfer-encoding":
            if self.length is not None:
                raise _Refused("Content-Length together with Transfer-Encoding")
            self.coded = True
            self.chunked = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
        self.headers.append((name, value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim answer (100 Continue): the real one follows on the same connection.
            self.reason = b""
            self.headers = []
            self.length = None
            self.coded = self.chunked = False
            return
        self.status = status
        self.version = version = self.parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise _Refused(f"not an HTTP/1.x response (HTTP/{version})")
        self.head_done = True
        if self.head_only:  # (llhttp forgets it once a message is complete)
            self.reusable = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.pieces.append(body)
        self.unread += len(body)
        self.got += len(body)

    def on_message_complete(self) -> None:
        if self.head_done and not self.complete:
            self.complete = True
            self.reusable = self.parser.should_keep_alive()

    # -- feeding --
    @property
    def until_close(self) -> bool:
        """The body runs to the end of the connection (neither a length nor chunked framing)."""
        return self.length is None and not self.chunked

    def feed(self, data: bytes) -> None:
        """Parse what arrived; raises httpx.RemoteProtocolError once, then ignores the rest."""
        if self.failed:
            return
        if self.complete:
            self.extra = True
            return
        try:
            if self.head_only:
                self._feed_head_only(data)
            elif not self.head_done:
                self._feed_head(data)
            else:
                self._feed_body(data)
        except httptools.HttpParserUpgrade:
            self.reusable = False  # 101: whatever follows is not HTTP; nothing here speaks it
            self.complete = self.head_done
        except httptools.HttpParserError as exc:
            if self.complete:
                self.extra = True  # junk after a whole response only spoils the connection
                return
            self.failed = True
            cause = exc.__context__ if isinstance(exc.__context__, _Refused) else exc
            raise httpx.RemoteProtocolError(f"malformed upstream response: {cause}") from None
        except httpx.RemoteProtocolError:
            self.failed = True
            raise

    def _feed_head(self, data: bytes) -> None:
        room = MAX_HEAD - self.head_bytes
        if len(data) <= room:
            self.head_bytes += len(data)
            self.parser.feed_data(data)
            if not self.head_done and self.head_bytes >= MAX_HEAD:
                raise httpx.RemoteProtocolError("response head too large")
            return
        view = memoryview(data)
        self.head_bytes = MAX_HEAD
        self.parser.feed_data(view[:room])
        if not self.head_done:
            raise httpx.RemoteProtocolError("response head too large")
        if not self.complete:
            self._feed_body(view[room:])
        elif len(view) > room:
            self.extra = True

    def _feed_body(self, data: bytes | memoryview) -> None:
        got = self.got
        self.parser.feed_data(data)
        if self.got != got or self.complete:
            self.stalled = 0
            return
        self.stalled += len(data)
        if self.stalled > MAX_HEAD:
            raise httpx.RemoteProtocolError("response framing too large (chunk lines or trailers)")

    def _feed_head_only(self, data: bytes) -> None:
        # llhttp cannot be told a HEAD answer has no body, so it only ever sees whole heads.
        pending = self.pending
        pending += data
        while not self.head_done:
            end = pending.find(b"\r\n\r\n")
            if end < 0:
                if len(pending) > MAX_HEAD:
                    raise httpx.RemoteProtocolError("response head too large")
                return
            self.head_bytes += end + 4
            if self.head_bytes > MAX_HEAD:
                raise httpx.RemoteProtocolError("response head too large")
            self.parser.feed_data(bytes(pending[: end + 4]))
            del pending[: end + 4]
        self.complete = True
        self.extra = bool(pending)

    def take(self) -> bytes:
        pieces = self.pieces
        out = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        pieces.clear()
        self.unread = 0
        return out


class ResponseBody(httpx.AsyncByteStream):
    """The response body as llhttp frames it (Content-Length, chunked or up to the connection's end)."""

    def __init__(self, pool: _Pool, key: _Key, conn: _Connection, parse: ResponseParse) -> None:
        self.pool = pool
        self.key = key
        self.conn = conn
        self.parse = parse
        self.done = False
        self.released = False
        if parse.complete and not parse.pieces:
            self.done = True
            self._release()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self.done:
            chunk = await self.read()
            if chunk:
                yield chunk

    async def read(self) -> bytes:
        """The next piece of body (b"" once finished)."""
        parse = self.parse
        conn = self.conn
        while True:
            if self.done:
                return b""
            if parse.pieces:
                out = parse.take()
                if parse.complete:
                    self.done = True
                    self._release()
                return out
            if parse.complete:
                self.done = True
                self._release()
                return b""
            conn.raise_if_failed()
            if conn.eof:
                if parse.until_close:
                    parse.reusable = False
                    self.done = True
                    self._release()
                    return b""
                raise httpx.RemoteProtocolError("upstream closed the connection before the body ended")
            await conn.wait_data()

    def _release(self) -> None:
        if self.released:
            return
        self.released = True
        parse = self.parse
        conn = self.conn
        if parse.complete and parse.reusable and not parse.extra and not conn.closed and conn.error is None:
            self.pool.put_back(self.key, conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        if not self.released:
            if not self.done:
                self.parse.reusable = False  # unread body: the connection cannot be reused
            self._release()

    def __del__(self) -> None:
        # A response dropped unclosed must not keep its connection (and its per-host slot) forever.
        if not self.released:
            self.released = True
            try:
                self.conn.close()
            except RuntimeError:  # its event loop is already closed
                pass
