"""Fuzzing the lean transport's response reading: however the bytes are cut into reads, the answer
is the same; malformed framing and oversized heads end in a transport error, never a hang.

The reads go straight into the connection's data_received (what asyncio does with each recv), so a
split lands exactly where hypothesis puts it; the only stand-in is the socket underneath.
"""

from __future__ import annotations

import asyncio
from itertools import pairwise

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.upstream.lean_transport import MAX_HEAD, Http11Transport, _Connection

pytestmark = [pytest.mark.relay]

KEY = ("http", "upstream.test", 80)
FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


class Socket(asyncio.Transport):
    """Where the request goes: it is only recorded; the answer is delivered by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = bytearray()
        self.closing = False
        self.paused = False

    def write(self, data) -> None:
        self.sent += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


_loop = asyncio.new_event_loop()


def exchange(reads: list[bytes], method: str = "GET") -> tuple:
    """Send one request over a fresh connection, deliver `reads`, then EOF; the outcome as a tuple."""

    async def run() -> tuple:
        pool = Http11Transport()
        conn = _Connection(_loop)
        conn.connection_made(Socket())

        async def deliver() -> None:
            for piece in reads:
                await asyncio.sleep(0)
                conn.data_received(piece)
            await asyncio.sleep(0)
            conn.eof_received()

        feeder = asyncio.ensure_future(deliver())
        request = httpx.Request(method, "http://upstream.test/v1/x", content=b"{}")
        try:
            resp = await pool._exchange(KEY, conn, request, b"", b"", None, 5.0)
            body = bytearray()
            while piece := await resp.stream.read():
                body += piece
        except httpx.TransportError as exc:
            return ("error", type(exc).__name__)
        finally:
            await feeder
        pooled = conn in pool._idle.get(KEY, ()) and not conn.stray
        return (resp.status_code, resp.reason_phrase, resp.headers.raw, bytes(body), pooled)

    return _loop.run_until_complete(asyncio.wait_for(run(), 10))


def split(wire: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    return [wire[a:b] for a, b in pairwise(points) if b > a]


token = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=20)
value = st.text("abcdefghijklmnopqrstuvwxyz0123456789 ;=/,.:-", max_size=40).map(str.strip)
plain_headers = st.lists(st.tuples(token, value), max_size=8).map(
    lambda hs: [
        (n, v) for n, v in hs if n.lower() not in ("content-length", "transfer-encoding", "connection")
    ]
)


@st.composite
def responses(draw) -> tuple[bytes, int, bytes, bool]:
    """A valid answer on the wire, its status, its body, and whether the connection may be reused."""
    status = draw(st.sampled_from([200, 201, 204, 400, 401, 429, 500, 503]))
    body = b"" if status == 204 else draw(st.binary(max_size=3000))
    framing = "none" if status == 204 else draw(st.sampled_from(["length", "chunked", "close"]))
    headers = [f"{n}: {v}".encode() for n, v in draw(plain_headers)]
    payload = body
    if framing == "length":
        headers.append(b"Content-Length: %d" % len(body))
    elif framing == "chunked":
        headers.append(b"Transfer-Encoding: chunked")
        cuts = sorted(
            {c for c in draw(st.lists(st.integers(1, max(1, len(body))), max_size=6)) if c < len(body)}
        )
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)]) if b > a]
        ext = draw(st.sampled_from([b"", b";a=1", b';name="q"']))
        trailer = draw(st.sampled_from([b"", b"X-Trailer: t\r\n"]))
        payload = (
            b"".join(b"%x%s\r\n%s\r\n" % (len(p), ext, p) for p in pieces) + b"0\r\n" + trailer + b"\r\n"
        )
    interim = draw(st.sampled_from([b"", b"HTTP/1.1 100 Continue\r\n\r\n"]))
    head = b"HTTP/1.1 %d Reason Text\r\n" % status + b"".join(h + b"\r\n" for h in headers) + b"\r\n"
    return interim + head + payload, status, body, framing != "close"


@FUZZ
@given(responses(), st.lists(st.integers(0, 1 << 16), max_size=40))
def test_any_split_of_a_valid_answer_reads_the_same(answer, cuts):
    wire, status, body, reusable = answer
    whole = exchange([wire])
    assert whole[0] == status and whole[3] == body and whole[4] == reusable
    assert exchange(split(wire, cuts)) == whole
    if len(wire) <= 1500:
        assert exchange([wire[i : i + 1] for i in range(len(wire))]) == whole


@FUZZ
@given(responses(), st.lists(st.integers(0, 1 << 16), max_size=20))
def test_a_head_answer_has_no_body_whatever_its_length_says(answer, cuts):
    wire, status, _, _ = answer
    head = wire[: wire.index(b"\r\n\r\n", wire.index(b"HTTP/1.1 %d" % status)) + 4]
    if b"Content-Length" not in head and b"Transfer-Encoding" not in head:
        head = head[:-2] + b"Content-Length: 99\r\n\r\n"
    result = exchange(split(head, cuts), method="HEAD")
    assert result[0] == status and result[3] == b"" and result[4] is True


bad_sizes = st.one_of(
    st.sampled_from([b"zz", b"-1", b"0x5", b" 5", b"5 5", b"", b"1" * 20, b"f" * 17, b"5\n"]),
    st.binary(min_size=1, max_size=12).filter(
        lambda b: not all(c in b"0123456789abcdefABCDEF" for c in b) and b";" not in b and b"\r" not in b
    ),
)


@FUZZ
@given(bad_sizes, st.lists(st.integers(0, 1 << 12), max_size=20))
def test_a_bad_chunk_size_is_a_protocol_error(size, cuts):
    wire = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        + size
        + b"\r\nworld\r\n0\r\n\r\n"
    )
    assert exchange(split(wire, cuts)) == ("error", "RemoteProtocolError")


@FUZZ
@given(st.integers(1, 40), st.integers(0, 30), st.lists(st.integers(0, 1 << 12), max_size=20))
def test_chunk_data_longer_or_shorter_than_its_size_is_an_error(size, actual, cuts):
    if size == actual:
        actual += 1
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (
        size,
        b"d" * actual,
    )
    assert exchange(split(wire, cuts))[0] == "error"


@FUZZ
@given(
    st.integers(MAX_HEAD + 1, 4 * MAX_HEAD),
    st.integers(1, 200),
    st.lists(st.integers(0, 1 << 18), max_size=30),
    st.sampled_from(["GET", "HEAD"]),
)
def test_a_head_past_the_cap_is_refused(size, per_header, cuts, method):
    line = b"X-H: " + b"v" * per_header + b"\r\n"
    wire = b"HTTP/1.1 200 OK\r\n" + line * (size // len(line) + 1) + b"Content-Length: 2\r\n\r\nok"
    assert exchange(split(wire, cuts), method) == ("error", "RemoteProtocolError")


def test_a_head_just_under_the_cap_is_read():
    line = b"X-H: " + b"v" * 100 + b"\r\n"
    head = b"HTTP/1.1 200 OK\r\n" + line * ((MAX_HEAD - 200) // len(line)) + b"Content-Length: 2\r\n\r\n"
    assert exchange([head + b"ok"])[3] == b"ok"


@FUZZ
@given(st.integers(1, 4), st.lists(st.integers(0, 1 << 18), max_size=30))
def test_endless_trailers_or_chunk_lines_are_refused(kind, cuts):
    filler = {
        1: b"X-T: " + b"t" * 4000 + b"\r\n",
        2: b"X-" + b"t" * 4000 + b": v\r\n",
        3: b"0" * 4000,
        4: b"5;" + b"e" * 4000,
    }[kind]
    tail = b"0\r\n" + filler * 40 if kind <= 2 else filler * 40
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n" + tail
    assert exchange(split(wire, cuts)) == ("error", "RemoteProtocolError")


@FUZZ
@given(st.binary(max_size=600), st.lists(st.integers(0, 1 << 10), max_size=20))
def test_garbage_ends_in_an_answer_or_a_transport_error(noise, cuts):
    for wire in (
        noise,
        b"HTTP/1.1 200 OK\r\n" + noise,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + noise,
    ):
        result = exchange(split(wire, cuts))
        assert result[0] == "error" or isinstance(result[0], int)
        assert exchange([wire]) == result


def test_bytes_after_the_answer_keep_the_connection_out_of_the_pool():
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert exchange([answer])[4] is True
    assert exchange([answer + b"HTTP/1.1 200 OK\r\n\r\n"])[3:] == (b"ok", False)
    assert exchange([answer, b"junk"])[3:] == (b"ok", False)


def test_an_answer_in_another_http_version_is_refused():
    assert exchange([b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok"]) == ("error", "RemoteProtocolError")
    assert exchange([b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"])[3:] == (b"ok", False)
