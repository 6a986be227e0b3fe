"""MAX_REQUEST_BODY_MB against a real web worker (2 MB in the tests, see tests/_env.py).

A body over the limit is refused by the worker's HTTP layer with a 413 and a closed connection,
before the rest of it is read (by Content-Length at once, chunked as it arrives), on every path;
a gzip body is refused once it inflates past the same limit, without inflating the rest.
"""

from __future__ import annotations

import gzip
import json
import select
import socket
import time
import zlib

import httpx
import pytest
from django.conf import settings

from tests.conftest import live, make_channel, make_token, make_user

pytestmark = [live, pytest.mark.relay]

LIMIT = settings.MAX_REQUEST_BODY_MB * 1024 * 1024
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
PATHS = [
    "/v1/chat/completions",
    "/v1/audio/transcriptions",
    "/api/user/login",
    "/admin/login/",
    "/mj/submit/imagine",
    "/suno/submit/music",
]


def peak_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends, and whether it closed the connection within `timeout`."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            piece = sock.recv(65536)
            if not piece:
                return data, True
            data += piece
    except ConnectionResetError:
        return data, True
    except TimeoutError:
        return data, False


def assert_413(data: bytes) -> None:
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), data[:200]
    error = json.loads(body)["error"]
    assert error["code"] == "request_too_large" and error["type"] == "invalid_request_error"
    assert error["message"]


def bomb(inflated: int) -> bytes:
    """A gzip body of a few hundred kB that inflates to `inflated` bytes of JSON-ish zeros."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"0" * (1 << 20)
    out = [packer.compress(b'{"model":"gpt-4o-mini","messages":[],"x":"')]
    for _ in range(inflated // len(block)):
        out.append(packer.compress(block))
    out.append(packer.compress(b'"}'))
    out.append(packer.flush())
    return b"".join(out)


@pytest.mark.parametrize("path", PATHS)
def test_declared_length_over_the_limit_is_refused_before_the_body(gateway, path):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 1024**3}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"{" * 1000)  # 1 kB of a declared 50 GB
        started = time.monotonic()
        data, closed = read_until_closed(sock, 5)
    assert_413(data)
    assert closed and time.monotonic() - started < 3


def test_expect_continue_over_the_limit_gets_no_100(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(
            f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {LIMIT + 1}\r\n\r\n".encode()
        )
        data, closed = read_until_closed(sock, 5)
    assert_413(data)
    assert closed and b"100 Continue" not in data


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/user/login"])
def test_chunked_body_is_refused_as_it_passes_the_limit(gateway, path):
    step = 256 * 1024
    chunk = f"{step:x}\r\n".encode() + b"a" * step + b"\r\n"
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        sent = 0
        while sent <= LIMIT:  # then stop: the answer must come without another byte
            sock.sendall(chunk)
            sent += step
            readable, _, _ = select.select([sock], [], [], 0.02)
            if readable:
                break
        data, closed = read_until_closed(sock, 5)
    assert_413(data)
    assert closed and sent <= LIMIT + step


def test_bodies_under_the_limit_still_arrive_whole(gateway, fake_upstream):
    make_channel(fake_upstream.base_url)
    token = make_token(make_user("ursula"))
    filler = "x" * (LIMIT - 4096)  # past Twisted's in-memory size: spooled, as before
    body = json.dumps({**CHAT, "user": filler}).encode()
    auth = {"Authorization": f"Bearer sk-{token.key}", "Content-Type": "application/json"}
    r = httpx.post(f"{gateway.v1}/chat/completions", content=body, headers=auth, timeout=20)
    assert r.status_code == 200, r.text
    assert fake_upstream.requests[-1].body["user"] == filler

    def pieces():  # chunked transfer encoding
        for i in range(0, len(body), 100_000):
            yield body[i : i + 100_000]

    r = httpx.post(f"{gateway.v1}/chat/completions", content=pieces(), headers=auth, timeout=20)
    assert r.status_code == 200, r.text
    assert fake_upstream.requests[-1].body["user"] == filler


def test_gzip_bomb_is_refused_without_inflating_it(gateway):
    body = bomb(512 * 1024 * 1024)
    assert len(body) < LIMIT  # the compressed body itself passes the limit
    before = peak_rss_kb(gateway.proc.pid)
    started = time.monotonic()
    r = httpx.post(
        f"{gateway.v1}/chat/completions",
        content=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        timeout=60,
    )
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "request_too_large"
    assert time.monotonic() - started < 5
    assert peak_rss_kb(gateway.proc.pid) - before < 64 * 1024  # never held the inflated body


def test_gzip_bodies_inflate_and_bad_ones_are_a_400(gateway, fake_upstream):
    make_channel(fake_upstream.base_url)
    token = make_token(make_user("gus"))
    headers = {"Authorization": f"Bearer sk-{token.key}", "Content-Encoding": "gzip"}
    packed = gzip.compress(json.dumps(CHAT).encode())
    r = httpx.post(f"{gateway.v1}/chat/completions", content=packed, headers=headers, timeout=20)
    assert r.status_code == 200, r.text
    assert fake_upstream.requests[-1].body["messages"] == CHAT["messages"]
    half = json.dumps(CHAT).encode()
    two_members = gzip.compress(half[:20]) + gzip.compress(half[20:])
    r = httpx.post(f"{gateway.v1}/chat/completions", content=two_members, headers=headers, timeout=20)
    assert r.status_code == 200, r.text
    for bad in (packed[:-12], b"not gzip at all"):
        r = httpx.post(f"{gateway.v1}/chat/completions", content=bad, headers=headers, timeout=20)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["type"] == "invalid_request_error"
