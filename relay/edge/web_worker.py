"""One Daphne web worker: `python -m relay.edge.web_worker --fd N newapi_site.asgi:application`.

Daphne creates its Twisted asyncio loop at import time with `asyncio.new_event_loop()`, so
installing uvloop's policy first puts the whole worker (Twisted reactor included) on uvloop.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Iterable
from importlib import metadata

from newapi_site import bus

Target = tuple[str, object, Iterable[str]]  # (what it is, the object, the attributes the patches need on it)


class PatchTargetMissing(RuntimeError):
    """The installed Daphne or Twisted lacks an internal the patches below replace or read."""

    def __init__(self, missing: list[str]) -> None:
        versions = ", ".join(f"{dist} {_version(dist)}" for dist in ("daphne", "twisted"))
        super().__init__(
            f"the web worker patches internals this install does not have: {', '.join(missing)} ({versions});"
            " install the daphne and twisted versions pyproject.toml pins"
        )
        self.missing = missing


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def check_patch_targets(targets: Iterable[Target]) -> None:
    """Raise PatchTargetMissing naming every attribute a patch needs and its owner lacks."""
    missing = [
        f"{where}.{name}" for where, owner, names in targets for name in names if not hasattr(owner, name)
    ]
    if missing:
        raise PatchTargetMissing(missing)


def patch_targets() -> list[Target]:
    """Every undocumented Daphne/Twisted attribute the patches replace or read. Instance attributes
    are looked for on small live instances (a channel on Twisted's in-memory transport), since a
    class does not show them. Importing daphne.server installs its asyncio reactor, as Daphne does."""
    from daphne import server as daphne_server
    from daphne.http_protocol import HTTPFactory, WebRequest
    from daphne.ws_protocol import WebSocketProtocol
    from twisted.internet import abstract, reactor, tcp
    from twisted.internet.testing import StringTransport
    from twisted.web import http

    targets: list[Target] = [
        (
            "daphne.http_protocol.WebRequest",
            WebRequest,
            ("__init__", "handleContentChunk", "handle_exception"),
        ),
        ("daphne.ws_protocol.WebSocketProtocol", WebSocketProtocol, ("handle_exception",)),
        ("daphne.http_protocol.HTTPFactory", HTTPFactory, ("buildProtocol", "log")),
        (
            "daphne.server.Server",
            daphne_server.Server,
            ("create_application", "protocol_disconnected", "stop", "kill_all_applications"),
        ),
        ("daphne.server", daphne_server, ("logger",)),
        (
            "twisted.internet.tcp.Connection",
            tcp.Connection,
            ("startWriting", "doWrite", "offset", "dataBuffer"),
        ),
        ("twisted.internet.abstract.FileDescriptor()", abstract.FileDescriptor(), ("_tempDataLen",)),
        ("the Twisted reactor", reactor, ("_writers", "_disconnectSelectable", "_asyncioEventloop")),
        ("twisted.web.http.HTTPChannel", http.HTTPChannel, ("allHeadersReceived", "loseConnection")),
        ("twisted.web.http", http, ("_ChunkedTransferDecoder", "_IdentityTransferDecoder")),
    ]
    check_patch_targets(targets)  # the instances below are built from these
    channel = http.HTTPChannel()
    channel.timeOut = None  # no idle timer left in the reactor
    channel.makeConnection(StringTransport())
    # probes for the attribute check only: never fed any data, so no callbacks
    decoders = (
        http._ChunkedTransferDecoder(None, None),  # type: ignore[arg-type]
        http._IdentityTransferDecoder(0, None, None),
    )
    wrapped = http.HTTPFactory().buildProtocol(None)  # what a connection's protocol is
    assert wrapped is not None
    with socket.socket() as probe:  # never connected or registered with the reactor
        connection = tcp.Connection(probe, wrapped)
    return [
        *targets,
        ("twisted.internet.tcp.Connection()", connection, ("protocol",)),
        ("twisted.web.http.HTTPFactory().buildProtocol()", wrapped, ("_channel",)),
        ("twisted.web.http.HTTPChannel()", channel, ("_transferDecoder", "length", "requests")),
        ("twisted.web.http.Request()", http.Request(channel), ("_parsePOSTFormSubmission", "channel")),
        *(
            (f"twisted.web.http.{type(d).__name__}()", d, ("dataCallback", "finishCallback"))
            for d in decoders
        ),
    ]


def skip_form_parsing() -> None:
    """Twisted parses POST form bodies into `request.args` (and the Content-Type via the email
    package: ~6% of a relay request's CPU). Daphne hands the raw body to the app and never reads
    `args`, so turn that parsing off."""
    from daphne.http_protocol import WebRequest

    init = WebRequest.__init__

    def __init__(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False

    WebRequest.__init__ = __init__


def no_delay() -> None:
    """Set TCP_NODELAY on accepted connections: with Nagle on, a small SSE chunk or the end
    of a response can wait for the client's delayed ACK."""
    from daphne.http_protocol import HTTPFactory

    build = HTTPFactory.buildProtocol

    def buildProtocol(self, addr):
        protocol = build(self, addr)
        if protocol is not None:
            made = protocol.connectionMade

            def connectionMade() -> None:
                made()
                try:
                    protocol.transport.setTcpNoDelay(True)
                except Exception:  # not a TCP transport (e.g. a UNIX socket)
                    pass

            protocol.connectionMade = connectionMade
        return protocol

    HTTPFactory.buildProtocol = buildProtocol


def eager_writes() -> None:
    """Write responses at the end of the current loop step instead of after the next poll.

    Twisted's transports buffer a write and ask the reactor to watch the socket for
    writability; the bytes leave only on the next loop iteration, and every write costs an
    epoll interest change there and back. A socket with room takes the bytes at once, so flush
    from a `call_soon` callback: the head and body Daphne writes one after the other still go
    out in one send, and only a socket that cannot take everything falls back to Twisted's
    writer. TLS transports keep Twisted's path.
    """
    import logging

    from twisted.internet import tcp

    log = logging.getLogger("newapi.web")
    twisted_start_writing = tcp.Connection.startWriting

    def flush(conn) -> None:
        conn._eager_flush_pending = False
        if not conn.connected or conn in conn.reactor._writers:
            return
        try:
            why = conn.doWrite()
        except Exception as exc:  # what the reactor does with a failing doWrite
            log.exception("socket write failed")
            why = exc
        if why:
            conn.reactor._disconnectSelectable(conn, why, False)
        elif conn._tempDataLen or conn.offset < len(conn.dataBuffer):
            twisted_start_writing(conn)  # the socket is full: wait for it the usual way

    def startWriting(self) -> None:
        loop = getattr(self.reactor, "_asyncioEventloop", None)
        if loop is None or getattr(self, "TLS", False) or self in self.reactor._writers:
            twisted_start_writing(self)
        elif not getattr(self, "_eager_flush_pending", False):
            self._eager_flush_pending = True
            loop.call_soon(flush, self)

    tcp.Connection.startWriting = startWriting  # type: ignore[method-assign]


def no_twisted_access_log() -> None:
    """Twisted formats a combined-log line for every request and hands it to its legacy log even
    at -v 0, where nothing prints it: ~2% of a streamed request's CPU. `serve` runs without an
    access log (Daphne's own, --access-log, is separate and still works)."""
    from daphne.http_protocol import HTTPFactory

    HTTPFactory.log = lambda self, request: None


def prompt_reaping() -> None:
    """Forget each finished request as it ends instead of in Daphne's once-a-second sweep.

    Daphne keeps every request in `Server.connections` until `application_checker`, every second,
    walks all of them, reaps those done and reraises their errors. At ~2,000 requests a second per
    worker that sweep held the loop for ~10 ms each second, the whole c=1 p99. Here the
    application's own completion does the same reaping for its request, so the sweep only meets
    the requests still running (and still cancels those that outlive their client).
    """
    from daphne import server as daphne_server

    Server = daphne_server.Server
    create_application = Server.create_application
    protocol_disconnected = Server.protocol_disconnected

    def reap(server, protocol, instance: asyncio.Future) -> None:
        details = server.connections.get(protocol)
        if details is None or details.get("application_instance") is not instance:
            return
        exception = None if instance.cancelled() else instance.exception()
        if exception is not None:
            if isinstance(exception, KeyboardInterrupt):
                server.stop()
            else:
                daphne_server.logger.error("Exception inside application: %s", exception, exc_info=exception)
                if "disconnected" not in details:
                    protocol.handle_exception(exception)
        del details["application_instance"]
        if "disconnected" in details:
            del server.connections[protocol]

    def create(self, protocol, scope):
        queue = create_application(self, protocol, scope)
        instance = self.connections.get(protocol, {}).get("application_instance")
        if instance is not None:
            instance.add_done_callback(lambda done: reap(self, protocol, done))
        return queue

    def disconnected(self, protocol) -> None:
        protocol_disconnected(self, protocol)
        details = self.connections.get(protocol)
        if details is not None and "application_instance" not in details:
            del self.connections[protocol]  # its application had already finished

    Server.create_application = create
    Server.protocol_disconnected = disconnected


def limit_request_bodies() -> None:
    """Refuse a body over MAX_REQUEST_BODY_MB as soon as that is known, on every path.

    Twisted spools a whole request body (to a temp file past 100 kB) before Daphne hands it to the
    application, so a limit there would come only after the upload filled the disk. Here a
    Content-Length over the limit is answered before a byte of the body is read, and a chunked
    body as soon as its running size passes the limit: a 413 with an OpenAI-style error, then the
    connection is closed and the rest never read. Cost on the hot path: one comparison per request
    and one addition per body chunk.
    """
    from daphne.http_protocol import WebRequest
    from twisted.web import http

    from relay.edge.request_body import max_body_bytes, too_large_http_response

    limit = max_body_bytes()
    refusal = too_large_http_response(limit)
    all_headers_received = http.HTTPChannel.allHeadersReceived
    handle_content_chunk = WebRequest.handleContentChunk

    def ignore(data: bytes) -> None:
        pass

    def refuse(channel) -> None:
        decoder = channel._transferDecoder
        if decoder is not None:  # the rest of this read must reach neither the request nor the app
            decoder.dataCallback = decoder.finishCallback = ignore
        channel.dataReceived = ignore
        channel.transport.write(refusal)
        channel.loseConnection()

    def allHeadersReceived(self) -> None:
        length = self.length  # None when chunked, 0 without a body
        if length is not None and length > limit:
            refuse(self)  # before the request makes its content file or sends "100 Continue"
            return
        all_headers_received(self)

    def handleContentChunk(self, data: bytes) -> None:
        seen = self._body_seen + len(data)
        if seen > limit:
            if self.channel is not None:
                refuse(self.channel)
            return
        self._body_seen = seen
        handle_content_chunk(self, data)

    http.HTTPChannel.allHeadersReceived = allHeadersReceived  # type: ignore[method-assign]
    WebRequest._body_seen = 0
    WebRequest.handleContentChunk = handleContentChunk


def settle_memory() -> None:
    """Load the application now, then move everything it allocated out of the collector's way.

    Django and the relay leave a few hundred thousand long-lived objects; without freezing them
    every full collection walks them all, which shows up as latency spikes under load. A larger
    first-generation threshold makes collections rarer on the request path.
    """
    import gc

    from django.conf import settings
    from django.utils.module_loading import import_string

    import_string(settings.ASGI_APPLICATION)  # the module Daphne imports afterwards

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def graceful_stop() -> None:
    """SIGTERM: stop accepting, let requests and streams finish within SHUTDOWN_GRACE_SECONDS."""
    from django.conf import settings

    from relay.edge import graceful

    graceful.install(settings.SHUTDOWN_GRACE_SECONDS)


def listen_for_invalidations() -> None:
    """Subscribe before any request caches anything, so no announced change is missed."""
    bus.ensure_listener()


def main() -> None:
    try:
        import uvloop
    except ImportError:  # uvloop is an optional speed-up
        pass
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from daphne.cli import CommandLineInterface

    try:
        check_patch_targets(patch_targets())
    except PatchTargetMissing as exc:
        raise SystemExit(f"relay.edge.web_worker: {exc}") from None
    skip_form_parsing()
    no_delay()
    eager_writes()
    no_twisted_access_log()
    prompt_reaping()
    settle_memory()
    listen_for_invalidations()
    limit_request_bodies()  # reads the limit from the settings settle_memory loaded
    graceful_stop()
    sys.argv[0] = "daphne"
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
