"""The key a multi-key channel uses for one attempt.

Called after the channel is chosen, once per attempt: `bind(channel)` returns the channel as the
adaptors should see it, with `key` set to one enabled key and `key_index` to its position (a
single-key channel comes back unchanged). No database work: the enabled keys are in the cached
ChannelInfo, kept current by the invalidation bus.

"random" picks uniformly among the enabled keys. "polling" hands them out in turn across every
worker: the turn is a shared counter per channel, a Redis INCR when Redis is configured, else a
counter in a file under DATA_DIR that every process on the machine increments under a byte-range
lock (the embedded default runs on one machine). The counter maps onto the keys enabled now, so
a disabled key is skipped without a gap in the rotation.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import random
import struct
import threading
from pathlib import Path

from django.conf import settings

from newapi_site import redis as r
from relay.channels import multi_key
from relay.errors import UpstreamError
from relay.state import ChannelInfo

_SLOT = struct.Struct("<Q")


class _FileCounters:
    """Per-channel counters in one sparse file, 8 bytes per channel id, locked slot by slot."""

    def __init__(self) -> None:
        self._fd = -1
        self._pid = 0
        self._lock = threading.Lock()

    def _file(self) -> int:
        if self._fd < 0 or self._pid != os.getpid():  # a forked worker opens its own
            path = Path(settings.DATA_DIR) / "multi-key-polling.bin"
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def next(self, channel_id: int) -> int:
        offset = channel_id * _SLOT.size
        with self._lock:
            fd = self._file()
            fcntl.lockf(fd, fcntl.LOCK_EX, _SLOT.size, offset, os.SEEK_SET)
            try:
                raw = os.pread(fd, _SLOT.size, offset)
                value = (_SLOT.unpack(raw)[0] if len(raw) == _SLOT.size else 0) + 1
                os.pwrite(fd, _SLOT.pack(value), offset)
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN, _SLOT.size, offset, os.SEEK_SET)
        return value


_files = _FileCounters()


async def turn(channel_id: int) -> int:
    """The next number (1, 2, 3, ...) of this channel's shared polling counter."""
    if r.redis_enabled():
        return int(await r.async_redis().incr(r.key("multi_key", "polling", channel_id)))
    return _files.next(channel_id)


def no_key(channel: ChannelInfo) -> UpstreamError:
    # The channel's failure, not the caller's: the next channel may serve the request.
    return UpstreamError(
        f"channel #{channel.id} has no enabled key",
        status=503,
        type="new_api_error",
        code="channel:no_available_key",
    )


async def bind(channel: ChannelInfo) -> ChannelInfo:
    """`channel` with the key of this attempt (a copy); single-key channels unchanged."""
    if not channel.keys:
        return channel
    live = channel.live_keys
    if not live:
        raise no_key(channel)
    if len(live) == 1:
        index = live[0]
    elif channel.multi_key_mode == multi_key.MODE_POLLING:
        index = live[(await turn(channel.id) - 1) % len(live)]
    else:
        index = random.choice(live)
    return dataclasses.replace(channel, key=channel.keys[index], key_index=index)


def each_key(channel: ChannelInfo) -> list[ChannelInfo]:
    """Every key of a channel as its own attempt (the channel test); a single-key channel once."""
    if not channel.keys:
        return [channel]
    return [dataclasses.replace(channel, key=k, key_index=i) for i, k in enumerate(channel.keys)]
