"""The lean HTTP/1.1 transport against real sockets on 127.0.0.1, each answer scripted byte by byte."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import hashlib
import ssl
from collections.abc import Awaitable, Callable

import httpx
import pytest

from relay.upstream.lean_transport import Http11Transport

pytestmark = [pytest.mark.relay]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


class Server:
    """A raw TCP server whose every connection runs `handler`; counts connections and requests."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.connections = 0
        self.tasks: set[asyncio.Task] = set()
        self.requests: list[tuple[bytes, dict[bytes, bytes], bytes]] = []

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{'localhost' if self.ssl_context else '127.0.0.1'}:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.tasks.add(asyncio.current_task())
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
        if b"content-length" in headers:
            body = await reader.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding") == b"chunked":
            body = b""
            while True:
                size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
                data = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += data[:-2]
        else:
            body = b""
        self.requests.append((lines[0], headers, body))
        return lines[0], headers, body


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra) + body


async def keep_answering(reader, writer, server: Server, answer=lambda req: ok(b"hello")) -> None:
    while True:
        req = await server.read_request(reader)
        writer.write(answer(req))
        await writer.drain()


@pytest.fixture
def transport() -> Http11Transport:
    return Http11Transport()


async def test_content_length_answers_reuse_one_connection(transport):
    async with Server(keep_answering) as srv, httpx.AsyncClient(transport=transport) as client:
        for _ in range(3):
            resp = await client.post(srv.url + "/v1/x?y=1", content=b'{"a":1}', headers={"X-K": "v"})
            assert resp.status_code == 200 and resp.content == b"hello"
        assert srv.connections == 1
        line, headers, body = srv.requests[0]
        assert line == b"POST /v1/x?y=1 HTTP/1.1"
        assert headers[b"x-k"] == b"v" and headers[b"host"] == b"127.0.0.1:%d" % srv.port
        assert body == b'{"a":1}'


async def test_chunked_body_split_anywhere_with_extensions_and_trailers(transport):
    payload = [b"data: one\n\n", b"data: two\n\n", b"x" * 3000]

    async def handler(reader, writer, server):
        while True:
            await server.read_request(reader)
            wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
            wire += b"".join(b"%x;ext=1\r\n" % len(p) + p + b"\r\n" for p in payload)
            wire += b"0\r\nX-Trailer: t\r\n\r\n"
            for i in range(0, len(wire), 7):  # 7-byte pieces split size lines, CRLFs and data
                writer.write(wire[i:i + 7])
                await writer.drain()
                await asyncio.sleep(0)

    async with Server(handler) as srv, httpx.AsyncClient(transport=transport) as client:
        for _ in range(2):
            async with client.stream("POST", srv.url, content=b"{}") as resp:
                got = b"".join([c async for c in resp.aiter_raw()])
            assert got == b"".join(payload)
        assert srv.connections == 1


async def test_body_until_close_and_connection_close_are_not_reused(transport):
    async def handler(reader, writer, server):
        req = await server.read_request(reader)
        if req[0].startswith(b"GET /eof"):
            writer.write(b"HTTP/1.1 200 OK\r\n\r\nall of it")
        else:
            writer.write(ok(b"bye", b"Connection: close\r\n"))
        await writer.drain()

    async with Server(handler) as srv, httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(srv.url + "/eof")).content == b"all of it"
        assert (await client.get(srv.url + "/eof")).content == b"all of it"
        assert (await client.get(srv.url + "/close")).content == b"bye"
        assert (await client.get(srv.url + "/close")).content == b"bye"
        assert srv.connections == 4


async def test_a_pooled_connection_the_server_dropped_is_replaced(transport):
    async def handler(reader, writer, server):
        await server.read_request(reader)
        writer.write(ok(b"once"))  # keep-alive promised, then closed anyway
        await writer.drain()

    async with Server(handler) as srv, httpx.AsyncClient(transport=transport) as client:
        assert (await client.post(srv.url, content=b"1")).content == b"once"
        await asyncio.sleep(0.05)
        assert (await client.post(srv.url, content=b"2")).content == b"once"
        assert srv.connections == 2


async def test_a_request_a_pooled_connection_dropped_unanswered_is_resent_when_safe(transport):
    async def handler(reader, writer, server):
        if server.connections == 1:
            await server.read_request(reader)
            writer.write(ok(b"first"))
            await writer.drain()
            await server.read_request(reader)  # the second request: taken, then the line goes dead
            return
        await keep_answering(reader, writer, server)

    async with Server(handler) as srv, httpx.AsyncClient(transport=transport) as client:
        assert (await client.post(srv.url, content=b"1")).content == b"first"
        assert (await client.post(srv.url, content=b"2")).content == b"hello"  # resent on a new connection
        assert srv.connections == 2
        assert [body for _, _, body in srv.requests] == [b"1", b"2", b"2"]

    async def body_stream():
        yield b"streamed body"

    async with Server(handler) as srv, httpx.AsyncClient(transport=transport) as client:
        assert (await client.post(srv.url, content=b"1")).content == b"first"
        with pytest.raises(httpx.RemoteProtocolError):  # a streamed body is gone: never sent twice
            await client.post(srv.url, content=body_stream())
        assert srv.connections == 1


async def test_read_timeout_and_connect_error(transport):
    async def silent(reader, writer, server):
        await server.read_request(reader)
        await asyncio.sleep(5)

    async with Server(silent) as srv, httpx.AsyncClient(transport=transport, timeout=0.3) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(httpx.ReadTimeout):
            await client.get(srv.url)
        assert 0.25 < loop.time() - started < 2
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get(f"http://127.0.0.1:{srv.port}/")  # the server is gone


async def test_a_stream_that_goes_quiet_times_out_between_chunks(transport):
    async def handler(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    async with Server(handler) as srv, httpx.AsyncClient(transport=transport, timeout=0.3) as client:
        async with client.stream("GET", srv.url) as resp:
            chunks = resp.aiter_raw()
            assert await chunks.__anext__() == b"first"
            with pytest.raises(httpx.ReadTimeout):
                await chunks.__anext__()


async def test_interim_answers_heads_and_empty_statuses(transport):
    async def handler(reader, writer, server):
        while True:
            line, _, _ = await server.read_request(reader)
            if line.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
            elif line.startswith(b"DELETE"):
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"after continue"))
            await writer.drain()

    async with Server(handler) as srv, httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(srv.url)).content == b"after continue"
        head = await client.head(srv.url)
        assert head.status_code == 200 and head.content == b""
        gone = await client.delete(srv.url)
        assert gone.status_code == 204 and gone.reason_phrase == "No Content"
        assert (await client.get(srv.url)).content == b"after continue"
        assert srv.connections == 1


async def test_gzip_is_decoded_by_httpx(transport):
    packed = gzip.compress(b'{"ok":true}')
    answer = lambda req: ok(packed, b"Content-Encoding: gzip\r\nContent-Type: application/json\r\n")  # noqa: E731

    async def handler(reader, writer, server):
        await keep_answering(reader, writer, server, answer)

    async with Server(handler) as srv, httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(srv.url)).json() == {"ok": True}


async def test_multipart_upload_and_a_large_answer_arrive_whole(transport):
    big = bytes(range(256)) * 20000  # 5 MB, more than the read high-water mark

    async def handler(reader, writer, server):
        await keep_answering(reader, writer, server, lambda req: ok(hashlib.sha256(req[2]).hexdigest().encode() + big))

    upload = b"\x00\x01audio" * 50000
    async with Server(handler) as srv, httpx.AsyncClient(transport=transport) as client:
        resp = await client.post(srv.url, data={"model": "whisper-1"}, files={"file": ("a.mp3", upload, "audio/mpeg")})
        digest, body = resp.content[:64], resp.content[64:]
        assert body == big
        _, headers, received = srv.requests[0]
        assert digest == hashlib.sha256(received).hexdigest().encode()
        assert upload in received and b'name="model"' in received
        assert headers[b"content-type"].startswith(b"multipart/form-data")


async def test_a_body_cut_short_is_an_error_and_the_connection_is_dropped(transport):
    async def handler(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()

    async with Server(handler) as srv, httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(srv.url)
        assert not any(transport._idle.values())


async def test_a_response_closed_early_is_not_pooled(transport):
    async def handler(reader, writer, server):
        while True:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            await writer.drain()

    async with Server(handler) as srv, httpx.AsyncClient(transport=transport) as client:
        for _ in range(2):
            async with client.stream("GET", srv.url) as resp:
                assert await resp.aiter_raw().__anext__() == b"first"
        assert srv.connections == 2
        assert not any(transport._idle.values())


def _self_signed() -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


async def test_https_with_a_verified_certificate(tmp_path):
    cert, key = _self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    async with Server(keep_answering, server_ctx) as srv:
        with pytest.raises(httpx.ConnectError):  # not trusted by default
            async with httpx.AsyncClient(transport=Http11Transport()) as client:
                await client.get(srv.url)
        trusting = ssl.create_default_context(cafile=str(tmp_path / "c.pem"))
        async with httpx.AsyncClient(transport=Http11Transport(trusting)) as client:
            assert (await client.get(srv.url)).content == b"hello"
            assert (await client.get(srv.url)).content == b"hello"
        assert srv.connections == 1  # the untrusted attempt never got past the handshake; one reused


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",  # duplicate, even equal
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",  # conflicting
    b"HTTP/1.1 200 OK\r\nContent-Length: 5, 7\r\n\r\nhello",  # conflicting, in one header
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
])
async def test_ambiguous_body_framing_is_refused_and_the_connection_dropped(transport, head):
    async def handler(reader, writer, server):
        await keep_answering(reader, writer, server, lambda req: head)

    async with Server(handler) as srv, httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="malformed upstream response: .*Content-Length"):
            await client.get(srv.url)
        assert not any(transport._idle.values())


async def test_a_response_head_past_the_cap_is_refused_without_buffering_the_rest(transport):
    async def handler(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nX-Big: ")
        for _ in range(1000):  # up to 8 MB of one header value, never ending
            writer.write(b"a" * 8192)
            await writer.drain()

    async with Server(handler) as srv, httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="response head too large"):
            await client.get(srv.url)


async def test_connections_per_host_are_capped_and_requests_past_the_cap_wait_their_turn():
    transport = Http11Transport(max_per_host=2)
    busy = 0
    most = 0

    async def handler(reader, writer, server):
        nonlocal busy, most
        while True:
            await server.read_request(reader)
            busy += 1
            most = max(most, busy)
            await asyncio.sleep(0.05)
            busy -= 1
            writer.write(ok(b"hello"))
            await writer.drain()

    async with Server(handler) as srv, httpx.AsyncClient(transport=transport) as client:
        answers = await asyncio.gather(*(client.get(srv.url) for _ in range(7)))
        assert [a.content for a in answers] == [b"hello"] * 7
        assert srv.connections == 2 and most == 2
        assert transport.open_connections(("http", "127.0.0.1", srv.port)) == 2


async def test_a_closed_connection_hands_its_slot_to_the_next_waiter():
    transport = Http11Transport(max_per_host=1)

    async def handler(reader, writer, server):
        await server.read_request(reader)
        await asyncio.sleep(0.05)
        writer.write(ok(b"bye", b"Connection: close\r\n"))
        await writer.drain()

    async with Server(handler) as srv, httpx.AsyncClient(transport=transport) as client:
        answers = await asyncio.gather(*(client.get(srv.url) for _ in range(3)))
        assert [a.content for a in answers] == [b"bye"] * 3
        assert srv.connections == 3
        assert transport.open_connections(("http", "127.0.0.1", srv.port)) == 0


async def test_waiting_past_the_pool_timeout_is_a_pool_timeout():
    transport = Http11Transport(max_per_host=1)

    async def slow(reader, writer, server):
        await server.read_request(reader)
        await asyncio.sleep(1)
        writer.write(ok(b"late"))
        await writer.drain()

    timeout = httpx.Timeout(5.0, pool=0.1)
    async with Server(slow) as srv, httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        first = asyncio.ensure_future(client.get(srv.url))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await client.get(srv.url)
        assert (await first).content == b"late"


async def test_the_relay_reports_an_ambiguous_answer_as_an_upstream_failure():
    from relay.errors import UpstreamError
    from relay.upstream import http

    async def handler(reader, writer, server):
        await keep_answering(reader, writer, server,
                             lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc")

    async with Server(handler) as srv:
        with pytest.raises(UpstreamError) as caught:
            await http.send("POST", srv.url + "/v1/chat/completions", {"Content-Type": "application/json"}, b"{}")
        assert caught.value.code == "do_request_failed"


async def test_a_response_dropped_unclosed_gives_its_connection_slot_back():
    transport = Http11Transport(max_per_host=1)

    async def handler(reader, writer, server):
        await keep_answering(reader, writer, server, lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")

    async with Server(handler) as srv:
        request = httpx.Request("GET", srv.url, extensions={"timeout": {"pool": 2.0}})
        resp = await transport.handle_async_request(request)
        assert resp.status_code == 200
        del resp  # never read, never closed
        key = ("http", "127.0.0.1", srv.port)
        assert transport.open_connections(key) == 0
        resp = await transport.handle_async_request(request)
        assert resp.status_code == 200 and srv.connections == 2
        await resp.aclose()
