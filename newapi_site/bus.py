"""Cross-process cache invalidation.

Every process keeps tokens, users, channels and options in memory. When one of them changes,
the writer calls `publish("token:<key>")` (or `user:<id>`, `channels`, `options`, `all`); every
process, this one included, drops the matching entries.

Transport: Redis pub/sub when REDIS_CONN_STRING is set (works across nodes); otherwise an
append-only file in DATA_DIR, which is enough for the embedded single-machine default.
A process that may have missed messages (listener reconnect) drops everything.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from django.conf import settings

from . import redis as r

log = logging.getLogger("newapi.bus")
Handler = Callable[[str], None]

_handlers: list[tuple[str, Handler]] = []
_listener_started = False
_lock = threading.Lock()


def subscribe(prefix: str, handler: Handler) -> None:
    """Call handler(event) for events starting with prefix, and for "all"."""
    _handlers.append((prefix, handler))


def dispatch(event: str) -> None:
    for prefix, handler in list(_handlers):
        if event == "all" or event.startswith(prefix):
            try:
                handler(event)
            except Exception:  # a broken handler must not stop the others
                log.exception("invalidation handler failed for %s", event)


def _channel_name() -> str:
    return r.key("invalidate")


def _file_path() -> str:
    return str(settings.DATA_DIR / "invalidate.log")


def publish(event: str) -> None:
    dispatch(event)
    try:
        if r.redis_enabled():
            r.sync_redis().publish(_channel_name(), event.encode())
        else:
            with open(_file_path(), "a", encoding="utf-8") as fh:
                fh.write(f"{os.getpid()} {event}\n")
    except Exception:
        log.exception("could not publish invalidation %s", event)


def ensure_listener() -> None:
    """Start the background listener once per process (idempotent, cheap to call)."""
    global _listener_started
    if _listener_started:
        return
    with _lock:
        if _listener_started:
            return
        _listener_started = True
        target = _listen_redis if r.redis_enabled() else _listen_file
        threading.Thread(target=target, name="newapi-invalidation", daemon=True).start()


def _listen_redis() -> None:
    import redis

    while True:
        try:
            client = redis.Redis.from_url(settings.REDIS_CONN_STRING)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(_channel_name())
            dispatch("all")  # anything may have changed while we were not listening
            for message in pubsub.listen():
                if message.get("type") == "message":
                    dispatch(message["data"].decode())
        except Exception:
            log.warning("invalidation listener lost Redis; retrying", exc_info=True)
            time.sleep(1)


def _listen_file() -> None:
    path = _file_path()
    me = str(os.getpid())
    try:
        position = os.path.getsize(path)
    except OSError:
        position = 0
    while True:
        time.sleep(0.25)
        try:
            size = os.path.getsize(path)
        except OSError:
            continue
        if size < position:
            position = 0
        if size == position:
            continue
        with open(path, encoding="utf-8") as fh:
            fh.seek(position)
            chunk = fh.read()
            position = fh.tell()
        for line in chunk.splitlines():
            pid, _, event = line.partition(" ")
            if event and pid != me:
                dispatch(event)
