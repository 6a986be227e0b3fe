"""Cross-process cache invalidation.

Every process keeps tokens, users, channels and options in memory. When one of them changes,
the writer calls `publish(...)` (`token_topic(key)`, `user:<id>`, `balance:<user id>`,
`channels`, `options`, `all`); every process, this one included, drops the matching entries.
A change made inside a transaction is announced to the others when it commits, so no process
reloads the row before it is visible.

Transport: Redis pub/sub when REDIS_CONN_STRING is set (works across nodes); otherwise an
append-only file in DATA_DIR that listeners wait on with inotify (a 250 ms poll where inotify
is missing), which is enough for the embedded single-machine default. Either way a message
arrives within milliseconds. Each process listens from its start (`ensure_listener`), before
it caches anything; a process that may have missed messages (reconnect, fork) drops everything.

Failure paths (an unknown key, no channel for a model, a missing ratio) call `catch_up()`:
it compares a cheap version stamp (a Redis counter, or the file's size) with what this process
has applied, so a change made a moment ago on another process is in force at once.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction

from . import redis as r

log = logging.getLogger("newapi.bus")
Handler = Callable[[str], None]

_handlers: list[tuple[str, Handler]] = []
_lock = threading.Lock()
_running = False  # a listener runs in this process (reset in a forked child)
_applied = 0  # Redis: highest version dispatched; file: bytes of the log dispatched
_file_lock = threading.Lock()
dispatched = 0  # events applied in this process so far: "has anything changed since?"

# INCR and PUBLISH in one step, so a version number is never seen without its message.
_PUBLISH_SCRIPT = """
local v = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', KEYS[2], v .. ' ' .. ARGV[1])
return v
"""


def key_digest(key: str) -> str:
    """What the bus, caches and logs carry instead of a token key: hex HMAC-SHA256 keyed with
    CRYPTO_SECRET, as New API names its cache entries (nodes must share the secret to share them)."""
    return hmac.new(settings.CRYPTO_SECRET.encode(), key.encode(), hashlib.sha256).hexdigest()


def token_topic(key: str) -> str:
    return "token:" + key_digest(key)


def subscribe(prefix: str, handler: Handler) -> None:
    """Call handler(event) for events starting with prefix, and for "all"."""
    _handlers.append((prefix, handler))


def dispatch(event: str) -> None:
    global dispatched
    dispatched += 1
    for prefix, handler in list(_handlers):
        if event == "all" or event.startswith(prefix):
            try:
                handler(event)
            except Exception:  # a broken handler must not stop the others
                log.exception("invalidation handler failed for %s", event)


def _version_key() -> str:
    return r.key("invalidate", "version")


def _channel_name() -> str:
    return r.key("invalidate")


def _file_path() -> Path:
    return Path(settings.DATA_DIR) / "invalidate.log"


def publish(event: str) -> None:
    if transaction.get_connection().in_atomic_block:
        dispatch(event)  # this process's own reads inside the transaction
        transaction.on_commit(lambda: _announce(event))
    else:
        _announce(event)


def _announce(event: str) -> None:
    dispatch(event)
    _send(event)


def _send(event: str) -> None:
    try:
        if r.redis_enabled():
            r.sync_redis().eval(_PUBLISH_SCRIPT, 2, _version_key(), _channel_name(), event.encode())
        else:
            line = f"{os.getpid()} {event}\n".encode()
            fd = os.open(_file_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)  # one O_APPEND write: lines from several processes never interleave
            finally:
                os.close(fd)
    except Exception:
        log.exception("could not publish invalidation %s", event)


# -- listening -------------------------------------------------------------------------------
def ensure_listener() -> None:
    """Start this process's listener once (idempotent, cheap to call).

    It returns once subscribed: anything published after it is seen by this process."""
    global _running
    if _running:
        return
    with _lock:
        if _running:
            return
        if r.redis_enabled():
            try:
                pubsub = _subscribe_redis()
            except Exception:  # Redis not up yet: the thread keeps trying
                log.warning("invalidation listener cannot reach Redis yet", exc_info=True)
                pubsub = None
            threading.Thread(
                target=_listen_redis, args=(pubsub,), name="newapi-invalidation", daemon=True
            ).start()
        else:
            _start_file()
            threading.Thread(target=_listen_file, name="newapi-invalidation", daemon=True).start()
        try:
            _register()
        except OSError:
            log.warning("cannot register this listener for sync markers", exc_info=True)
        _running = True


def _forget_listener() -> None:
    # The listener thread does not survive a fork: the child starts its own (and drops what
    # it inherited, as a reconnect does).
    global _running, _applied, _lock, _file_lock
    _running = False
    _applied = 0
    _lock, _file_lock = threading.Lock(), threading.Lock()  # another thread may have held them


os.register_at_fork(after_in_child=_forget_listener)


def _subscribe_redis():
    import redis

    global _applied
    client = redis.Redis.from_url(settings.REDIS_CONN_STRING)
    pubsub = client.pubsub()
    pubsub.subscribe(_channel_name())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # wait for the confirmation: from now on nothing is missed
        message = pubsub.get_message(timeout=1.0)
        if message and message.get("type") == "subscribe":
            break
    _applied = int(client.get(_version_key()) or 0)
    dispatch("all")  # anything may have changed while we were not listening
    return pubsub


def _listen_redis(pubsub) -> None:
    while True:
        try:
            if pubsub is not None:
                for message in pubsub.listen():
                    if message.get("type") == "message":
                        _on_redis_message(message["data"].decode())
        except Exception:
            log.warning("invalidation listener lost Redis; retrying", exc_info=True)
            try:
                pubsub.close()
            except Exception:
                pass
        while True:
            time.sleep(0.5)
            try:
                pubsub = _subscribe_redis()
                break
            except Exception:
                log.warning("invalidation listener cannot reach Redis yet", exc_info=True)


def _on_redis_message(data: str) -> None:
    global _applied
    version, _, event = data.partition(" ")
    if not version.isdigit():  # a peer that sends no version
        version, event = "0", data
    _deliver(event)
    _applied = max(_applied, int(version))


def _start_file() -> None:
    global _applied
    path = _file_path()
    with _file_lock:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
        _applied = os.path.getsize(path)
    dispatch("all")


def _listen_file() -> None:
    try:
        from inotify_simple import INotify, flags
    except ImportError:  # not Linux: poll
        INotify = None
    path = _file_path()
    restart = False
    while True:
        try:
            if restart:
                _start_file()
            restart = True
            while INotify is None:
                time.sleep(0.25)
                _drain_file()
            with INotify() as watcher:
                watcher.add_watch(path, flags.MODIFY | flags.DELETE_SELF | flags.MOVE_SELF)
                _drain_file()  # what arrived before the watch existed
                while True:
                    events = watcher.read(timeout=1000)  # the timeout also covers a lost event
                    _drain_file()
                    if any(e.mask & (flags.DELETE_SELF | flags.MOVE_SELF | flags.IGNORED) for e in events):
                        break  # the file was replaced: watch the new one
        except Exception:
            log.warning("invalidation listener lost %s; retrying", path, exc_info=True)
            time.sleep(0.25)


def _drain_file() -> bool:
    """Dispatch the lines other processes appended since the last call; True if there were any."""
    global _applied
    path = _file_path()
    me = str(os.getpid())
    with _file_lock:
        try:
            size = os.path.getsize(path)
        except OSError:
            return False
        if size < _applied:  # truncated or replaced: what was in between is unknown
            _applied = 0
            dispatch("all")
        if size == _applied:
            return False
        with open(path, "rb") as fh:
            fh.seek(_applied)
            chunk = fh.read(size - _applied)
        end = chunk.rfind(b"\n")
        if end < 0:  # a line still being written
            return False
        _applied += end + 1
        for line in chunk[:end].decode("utf-8", "replace").split("\n"):
            pid, _, event = line.partition(" ")
            if event and pid != me:
                _deliver(event)
        return True


async def catch_up() -> bool:
    """On a failure path only: apply what other processes announced that this one has not seen.

    True when something was pending (the caller should look again). Costs one stat or one
    Redis GET, so the hot path never calls it."""
    global _applied
    if not _running:
        return False
    try:
        if not r.redis_enabled():
            return _drain_file()
        version = int(await r.async_redis().get(_version_key()) or 0)
    except Exception:
        log.warning("could not read the invalidation version", exc_info=True)
        return False
    if version <= _applied:
        return False
    # Messages are on their way but not here yet: drop everything rather than wait for them.
    _applied = version
    dispatch("all")
    return True


# -- sync markers: "has every process on this machine seen what I published?" ------------------
def _registry() -> Path:
    return Path(settings.DATA_DIR) / "bus"


def _register() -> None:
    folder = _registry()
    folder.mkdir(exist_ok=True)
    for entry in folder.iterdir():
        if entry.name.isdigit() and not _alive(int(entry.name)):
            entry.unlink(missing_ok=True)
    mine = folder / str(os.getpid())
    mine.write_text("")
    atexit.register(mine.unlink, missing_ok=True)


def _deliver(event: str) -> None:
    if event.startswith("sync:"):
        try:
            (_registry() / str(os.getpid())).write_text(event[5:])
        except OSError:
            pass
        return
    dispatch(event)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


def wait_for_listeners(timeout: float = 2.0) -> bool:
    """Publish a marker and wait until every other listening process on this machine has seen it
    (so everything published before has been applied there). For tests and tools."""
    marker = uuid.uuid4().hex
    _send(f"sync:{marker}")  # not deferred to a commit: it orders after what was announced before
    me = str(os.getpid())
    deadline = time.monotonic() + timeout
    while True:
        pending = []
        for entry in _registry().glob("[0-9]*"):
            if entry.name == me or not _alive(int(entry.name)):
                continue
            try:
                if entry.read_text() != marker:
                    pending.append(entry)
            except OSError:
                continue
        if not pending:
            return True
        if time.monotonic() > deadline:
            log.warning("listeners %s did not confirm %s", [e.name for e in pending], marker)
            return False
        time.sleep(0.002)
