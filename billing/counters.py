"""At most N events per key in a fixed window, exact across processes and nodes.

Redis counts with one INCR per event when configured; without Redis (the embedded default) the
database does, with a conditional UPDATE that only one of two racing workers can win past the cap.
"""

from __future__ import annotations

import random
import time

from django.db import IntegrityError, transaction
from django.db.models import F

from billing.models import WindowCounter
from newapi_site import redis as r

# Count, and let the key expire with its window; over the cap the count is given back.
_CLAIM = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
return 1
"""


def window_key(name: str, window_seconds: int, now: float | None = None) -> tuple[str, int]:
    """The key of the window `now` falls in, and when that window ends."""
    window = max(int(window_seconds), 1)
    bucket = int((time.time() if now is None else now) // window)
    return f"{name}:{bucket}", (bucket + 1) * window


def claim(name: str, limit: int, window_seconds: int) -> bool:
    """Count one event for `name` in the current window; False (and not counted) past `limit`."""
    if limit <= 0:
        return False
    key, ends = window_key(name, window_seconds)
    if r.redis_enabled():
        ttl = max(int(ends - time.time()), 1)
        return bool(r.sync_redis().eval(_CLAIM, 1, r.key("window", key), limit, ttl))
    return _db_claim(key, limit, ends)


def _db_claim(key: str, limit: int, ends: int) -> bool:
    if random.random() < 0.01:  # old windows are never read again
        WindowCounter.objects.filter(expires_at__lt=int(time.time())).delete()
    if not WindowCounter.objects.filter(key=key).exists():
        try:
            with transaction.atomic():
                WindowCounter.objects.create(key=key, count=0, expires_at=ends)
        except IntegrityError:
            pass  # another worker created it first
    return WindowCounter.objects.filter(key=key, count__lt=limit).update(count=F("count") + 1) == 1


def claim_once(name: str, ttl_seconds: int) -> bool:
    """True for exactly one caller across all processes until `name` expires after ttl_seconds."""
    ttl = max(int(ttl_seconds), 1)
    if r.redis_enabled():
        return bool(r.sync_redis().set(r.key("once", name), "1", nx=True, ex=ttl))
    key = f"once:{name}"
    try:
        with transaction.atomic():
            WindowCounter.objects.create(key=key, count=1, expires_at=int(time.time()) + ttl)
    except IntegrityError:
        # Taken, unless what holds the name has expired (then the oldest claim is replaced once).
        now = int(time.time())
        return WindowCounter.objects.filter(key=key, expires_at__lt=now).update(expires_at=now + ttl) == 1
    return True
