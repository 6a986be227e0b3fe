"""Real proxies on 127.0.0.1 that count what passes through them: an HTTP proxy (CONNECT tunnels and
absolute-form forwarding) and a SOCKS5 proxy (no auth, or user/password when `credentials` is set).

Each runs on an asyncio loop in a thread of its own; `targets` lists the host:port of every
connection made through it, `auth` the credentials clients offered.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _splice(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    await asyncio.gather(_pipe(client[0], upstream[1]), _pipe(upstream[0], client[1]))


@dataclass
class _Proxy:
    host: str = "127.0.0.1"
    port: int = 0
    credentials: tuple[str, str] | None = None
    targets: list[str] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)

    def start(self):  # type: ignore[no-untyped-def]
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(
            asyncio.start_server(self._serve, self.host, self.port, family=socket.AF_INET)
        )
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()

    def url(self, scheme: str) -> str:
        creds = f"{self.credentials[0]}:{self.credentials[1]}@" if self.credentials else ""
        return f"{scheme}://{creds}{self.host}:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class HttpProxy(_Proxy):
    """CONNECT host:port opens a tunnel; `GET http://host:port/path` is forwarded (one request per
    connection: the forwarded request says Connection: close)."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = [line for line in lines[1:] if line]
        offered = next(
            (h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("proxy-authorization:")), ""
        )
        self.auth.append(offered)
        if self.credentials is not None:
            expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
            if offered != expected:
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                await writer.drain()
                writer.close()
                return
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            self.targets.append(target)
            upstream = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await _splice((reader, writer), upstream)
            return
        url = urlsplit(target)
        self.targets.append(f"{url.hostname}:{url.port or 80}")
        up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port or 80)
        kept = [
            h
            for h in headers
            if h.split(":", 1)[0].strip().lower()
            not in ("proxy-authorization", "proxy-connection", "connection")
        ]
        path = url.path + (f"?{url.query}" if url.query else "")
        up_writer.write(f"{method} {path or '/'} {version}\r\n".encode("latin-1"))
        up_writer.write(("\r\n".join([*kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1"))
        await up_writer.drain()
        await _splice((reader, writer), (up_reader, up_writer))


class Socks5Proxy(_Proxy):
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._socks(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            writer.close()

    async def _socks(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if version != 5:
            writer.close()
            return
        if self.credentials is None:
            writer.write(b"\x05\x00")
            self.auth.append("")
        else:
            if 2 not in methods:
                writer.write(b"\x05\xff")
                writer.close()
                return
            writer.write(b"\x05\x02")
            await writer.drain()
            _ver, ulen = await reader.readexactly(2)
            user = (await reader.readexactly(ulen)).decode()
            (plen,) = await reader.readexactly(1)
            password = (await reader.readexactly(plen)).decode()
            self.auth.append(f"{user}:{password}")
            if (user, password) != self.credentials:
                writer.write(b"\x01\x01")
                writer.close()
                return
            writer.write(b"\x01\x00")
        await writer.drain()
        _ver, command, _rsv, atyp = await reader.readexactly(4)
        if atyp == 1:
            host = socket.inet_ntoa(await reader.readexactly(4))
        elif atyp == 3:
            (length,) = await reader.readexactly(1)
            host = (await reader.readexactly(length)).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if command != 1:  # CONNECT only
            writer.write(b"\x05\x07\x00\x01" + bytes(6))
            writer.close()
            return
        self.targets.append(f"{host}:{port}")
        upstream = await asyncio.open_connection(host, port)
        writer.write(b"\x05\x00\x00\x01" + bytes(6))
        await writer.drain()
        await _splice((reader, writer), upstream)
