"""A web worker's graceful stop: on SIGTERM it stops accepting connections, lets the requests and
streams in flight finish (and settle their bills) for up to SHUTDOWN_GRACE_SECONDS, then stops.

Daphne cancels every running application in a "before shutdown" trigger. That trigger is replaced
by one that first closes the listening sockets, then waits until no application is running, no
request is half received and every answer written has left the process, and only then cancels
what is left. Twisted waits for the Deferred it returns before shutting the reactor down, and
then closes every connection at once, dropping whatever bytes a connection still buffers.
"""

from __future__ import annotations

import time
from typing import Any

POLL_SECONDS = 0.05


def running_applications(server: Any) -> int:
    return sum(
        1
        for details in list(server.connections.values())
        if (instance := details.get("application_instance")) is not None and not instance.done()
    )


def unsent(conn: Any) -> bool:
    """Bytes written to the connection that the kernel has not taken yet. The web worker's eager
    writes leave them here, outside the reactor's writers, until the next loop step: an application
    that returns in the step of its last write is done while the end of its answer is still here."""
    return bool(conn._tempDataLen or conn.offset < len(conn.dataBuffer))


def request_in_progress(conn: Any) -> bool:
    """A request begun on the connection and not yet answered in full, including one still being
    received, for which no application runs yet."""
    protocol = getattr(conn, "protocol", None)
    channel = getattr(protocol, "_channel", protocol)  # Twisted's HTTPFactory wraps each HTTPChannel
    return bool(getattr(channel, "requests", None))


def busy_connections(reactor: Any) -> int:
    from twisted.internet import tcp

    selectables = {*reactor.getReaders(), *reactor.getWriters()}
    return sum(
        1
        for conn in selectables
        if isinstance(conn, tcp.Connection) and (unsent(conn) or request_in_progress(conn))
    )


def install(grace_seconds: float) -> None:
    from daphne import server as daphne_server
    from twisted.internet import defer, tcp
    from twisted.internet import reactor as installed_reactor

    reactor: Any = installed_reactor  # the module object Twisted swaps for the installed reactor
    Server = daphne_server.Server
    kill_all_applications = Server.kill_all_applications

    def stop_accepting() -> None:
        for reader in list(reactor.getReaders()):
            if isinstance(reader, tcp.Port):
                reader.stopListening()

    def drain_then_kill(self: Any) -> defer.Deferred:
        stop_accepting()
        deadline = time.monotonic() + grace_seconds
        done: defer.Deferred = defer.Deferred()

        def check() -> None:
            past = time.monotonic() >= deadline
            if not past and (running_applications(self) or reactor.getWriters() or busy_connections(reactor)):
                reactor.callLater(POLL_SECONDS, check)
                return
            kill_all_applications(self)  # whatever outlived the grace period is cancelled
            done.callback(None)

        check()
        return done

    Server.kill_all_applications = drain_then_kill
