"""In-process snapshots of tokens, users and channels for the relay hot path.

A warm relay request reads nothing from the database: entries are loaded once (off the event
loop) and dropped when newapi_site.bus reports a change, or after SYNC_FREQUENCY seconds as a
safety net for a missed message (at once with MEMORY_CACHE_ENABLED=false: every request reads). Balances are NOT here: they live in billing.ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

from accounts.models import Token, User
from newapi_site import bus
from newapi_site.options import options
from relay.channels import multi_key
from relay.channels.types import ChannelStatus

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NEGATIVE_TTL = 5.0  # users
# Unknown token keys remembered (as digests): enough to absorb a client retrying a bad key,
# small enough (~1 MB) that a flood of invented keys cannot grow a worker.
NEGATIVE_CACHE_SIZE = 4096
NEGATIVE_CACHE_SECONDS = 5.0


def _ttl() -> float:
    """How long a snapshot serves: SYNC_FREQUENCY s, or not at all without the memory cache."""
    if not settings.MEMORY_CACHE_ENABLED:
        return 0.0
    return float(settings.SYNC_FREQUENCY or 60)


def parse_allow_ips(raw: str | None) -> tuple[IPNetwork, ...]:
    """Exact IPs and CIDR ranges, newline or comma separated (New API dropped CIDR: we keep it)."""
    nets: list[IPNetwork] = []
    for part in (raw or "").replace(",", "\n").split("\n"):
        part = part.strip().replace(" ", "")
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            continue
    return tuple(nets)


def parse_json_map(raw: str | None) -> dict[str, Any]:
    if not raw or not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass(slots=True, frozen=True)
class TokenInfo:
    id: int
    user_id: int
    key: str
    name: str
    status: int
    expired_time: int
    unlimited_quota: bool
    model_limits_enabled: bool
    model_limits: frozenset[str]
    allow_ips: tuple[IPNetwork, ...]
    group: str


@dataclass(slots=True, frozen=True)
class UserInfo:
    id: int
    username: str
    group: str
    status: int
    role: int
    email: str
    setting: dict[str, Any]


@dataclass(slots=True)
class ChannelInfo:
    id: int
    type: int
    name: str
    key: str
    status: int
    base_url: str
    other: str
    organization: str
    models: tuple[str, ...]
    groups: tuple[str, ...]
    priority: int
    weight: int
    model_mapping: dict[str, str]
    status_code_mapping: dict[str, str]
    setting: dict[str, Any]
    param_override: dict[str, Any]
    auto_ban: bool
    tag: str
    # A multi-key channel: its keys by index, the indices still enabled, "random" or "polling".
    # `key` is then the one key of the attempt at hand (`key_index`), set by key_choice.bind.
    keys: tuple[str, ...] = ()
    live_keys: tuple[int, ...] = ()
    multi_key_mode: str = ""
    key_index: int = -1

    @property
    def multi_key(self) -> bool:
        return bool(self.keys)


def channel_info(c: Any) -> ChannelInfo:
    info = multi_key.parse_info(c.channel_info)
    keys = tuple(multi_key.split_keys(c.key)) if info["is_multi_key"] else ()
    live = multi_key.live_indices(info, len(keys))
    return ChannelInfo(
        id=c.pk,
        type=int(c.type or 0),
        name=c.name or "",
        # a multi-key channel's key outside an attempt: one key, never the whole list
        key=(keys[live[0] if live else 0] if keys else c.key or ""),
        status=int(c.status or 0),
        base_url=(c.base_url or "").rstrip("/"),
        other=c.other or "",
        organization=c.openai_organization or "",
        models=tuple(c.model_list()),
        groups=tuple(c.group_list()),
        priority=int(c.priority or 0),
        weight=int(c.weight or 0),
        model_mapping={str(k): str(v) for k, v in parse_json_map(c.model_mapping).items() if v},
        status_code_mapping={str(k): str(v) for k, v in parse_json_map(c.status_code_mapping).items()},
        setting=parse_json_map(c.setting),
        param_override=parse_json_map(c.param_override),
        auto_ban=(c.auto_ban if c.auto_ban is not None else 1) == 1,
        tag=c.tag or "",
        keys=keys,
        live_keys=live,
        multi_key_mode=info["multi_key_mode"] or multi_key.MODE_RANDOM,
    )


class _Entry:
    __slots__ = ("expires", "value")

    def __init__(self, value: Any, ttl: float) -> None:
        self.value = value
        self.expires = time.monotonic() + ttl


# Keys are 48 characters of [0-9A-Za-z] (New API, later One API) or 32 hex digits (early One
# API); the column holds 48 at most. Anything else cannot match a row: refused unlooked-up.
_KEY_SHAPE = re.compile(r"[0-9A-Za-z_]{1,48}")


def well_formed(key: str) -> bool:
    return _KEY_SHAPE.fullmatch(key) is not None


class TokenCache:
    """Tokens by key. Known tokens stay until invalidated (or SYNC_FREQUENCY passes); unknown
    keys are remembered only as digests, for NEGATIVE_CACHE_SECONDS, at most
    NEGATIVE_CACHE_SIZE of them (least recently used go first), and looked up in batches on
    a thread of their own, so a flood of invented keys neither grows memory nor delays the
    refresh of real tokens."""

    def __init__(self) -> None:
        self._by_key: dict[str, _Entry] = {}
        self._key_by_digest: dict[str, str] = {}
        self._negative: OrderedDict[str, float] = OrderedDict()
        self._generation = 0  # bumped by every invalidation: a lookup racing one is not kept
        self._misses = _BatchLookup(self._load_many)
        bus.subscribe("token:", self._invalidate)
        bus.subscribe("tokens", self._invalidate)

    def _invalidate(self, event: str) -> None:
        self._generation += 1
        if event.startswith("token:"):
            digest = event[6:]
            self._negative.pop(digest, None)
            key = self._key_by_digest.get(digest)
            entry = self._by_key.get(key) if key is not None else None
            if entry is not None:
                entry.expires = 0.0  # still a known token: its refresh is not queued with misses
        else:
            self._negative.clear()
            for entry in list(self._by_key.values()):
                entry.expires = 0.0

    async def get(self, key: str) -> TokenInfo | None:
        entry = self._by_key.get(key)
        if entry is not None and entry.expires > time.monotonic():
            return entry.value
        generation = self._generation
        if entry is not None:
            info = await sync_to_async(self._load)(key)
        else:
            if not well_formed(key):
                return None
            digest = bus.key_digest(key)
            expires = self._negative.get(digest)
            if expires is not None and expires > time.monotonic():
                return None
            info = await self._misses.get(key)
        if generation == self._generation:
            self._remember(key, info)
        return info

    def _remember(self, key: str, info: TokenInfo | None) -> None:
        digest = bus.key_digest(key)
        if info is not None:
            self._by_key[key] = _Entry(info, _ttl())
            self._key_by_digest[digest] = key
            self._negative.pop(digest, None)
            return
        if self._by_key.pop(key, None) is not None:
            self._key_by_digest.pop(digest, None)
        self._negative[digest] = time.monotonic() + NEGATIVE_CACHE_SECONDS
        self._negative.move_to_end(digest)
        while len(self._negative) > NEGATIVE_CACHE_SIZE:
            try:
                self._negative.popitem(last=False)
            except KeyError:  # emptied by the listener thread meanwhile
                break

    @staticmethod
    def _load(key: str) -> TokenInfo | None:
        t = Token.live.filter(key=key).first()
        return token_info(t) if t is not None and t.key == key else None

    @staticmethod
    def _load_many(keys: list[str]) -> dict[str, TokenInfo]:
        close_old_connections()  # this thread lives as long as the process: drop a broken connection
        # `t.key` as stored: a case-insensitive collation (MySQL) must not match another case.
        return {t.key: token_info(t) for t in Token.live.filter(key__in=keys)}


def token_info(t: Any) -> TokenInfo:
    return TokenInfo(
        id=t.pk,
        user_id=t.user_id,
        key=t.key,
        name=t.name or "",
        status=int(t.status),
        expired_time=int(t.expired_time if t.expired_time is not None else -1),
        unlimited_quota=bool(t.unlimited_quota),
        model_limits_enabled=bool(t.model_limits_enabled),
        model_limits=frozenset(m.strip() for m in (t.model_limits or "").split(",") if m.strip()),
        allow_ips=parse_allow_ips(t.allow_ips),
        group=(t.group or "").strip(),
    )


class _BatchLookup:
    """Looks keys up on one thread of its own, many per query, one query per key at a time.

    Keys asked for while a query runs wait for the next one (up to _BATCH keys in a query), so a
    burst of thousands of keys costs a handful of queries, and concurrent requests with the same
    key share one lookup."""

    _BATCH = 200

    def __init__(self, load_many: Callable[[list[str]], dict[str, Any]]) -> None:
        self._load_many = load_many
        self._waiting: dict[str, asyncio.Future] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        self._executor: ThreadPoolExecutor | None = None

    async def get(self, key: str) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests run several): start over
            self._loop, self._waiting, self._draining = loop, {}, False
        future = self._waiting.get(key)
        if future is None:
            future = self._waiting[key] = loop.create_future()
            if not self._draining:
                self._draining = True
                loop.create_task(self._drain())  # noqa: RUF006 - _draining guards it
        # shielded: one caller going away must not cancel the lookup for the others
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="newapi-key-lookup")
        waiting = self._waiting
        try:
            while True:
                while waiting:
                    batch = list(itertools.islice(waiting, self._BATCH))
                    futures = [waiting.pop(k) for k in batch]
                    try:
                        found = await loop.run_in_executor(self._executor, self._load_many, batch)
                    except Exception as exc:
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                        continue
                    for key, future in zip(batch, futures, strict=False):
                        if not future.done():
                            future.set_result(found.get(key))
                # Idle: give the connection back (misses come in bursts, a held one is wasted).
                with contextlib.suppress(Exception):
                    await loop.run_in_executor(self._executor, connections.close_all)
                if not waiting:  # else keys came in meanwhile: nobody else will look them up
                    break
        finally:
            if waiting is self._waiting:
                self._draining = False


class UserCache:
    def __init__(self) -> None:
        self._by_id: dict[int, _Entry] = {}
        self._generation = 0  # bumped by every invalidation: a load racing one is not kept
        bus.subscribe("user:", self._invalidate)

    def _invalidate(self, event: str) -> None:
        self._generation += 1
        if event.startswith("user:"):
            try:
                self._by_id.pop(int(event[5:]), None)
            except ValueError:
                pass
        else:
            self._by_id.clear()

    async def get(self, user_id: int) -> UserInfo | None:
        entry = self._by_id.get(user_id)
        if entry is not None and entry.expires > time.monotonic():
            return entry.value
        generation = self._generation
        info = await sync_to_async(self._load)(user_id)
        if generation == self._generation:
            self._by_id[user_id] = _Entry(info, _ttl() if info else _NEGATIVE_TTL)
        return info

    @staticmethod
    def _load(user_id: int) -> UserInfo | None:
        u = User.live.filter(pk=user_id).first()
        if u is None:
            return None
        return UserInfo(
            id=u.pk,
            username=u.username,
            group=u.group or "default",
            status=int(u.status),
            role=int(u.role),
            email=u.email or "",
            setting=parse_json_map(u.setting),
        )


@dataclass
class ChannelIndex:
    """Enabled channels by (group, model), split into priority tiers, highest first."""

    channels: dict[int, ChannelInfo] = field(default_factory=dict)
    tiers: dict[tuple[str, str], list[list[ChannelInfo]]] = field(default_factory=dict)
    models_by_group: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, infos: list[ChannelInfo]) -> ChannelIndex:
        index = cls(channels={c.id: c for c in infos})
        grouped: dict[tuple[str, str], list[ChannelInfo]] = {}
        for c in infos:
            if c.status != ChannelStatus.ENABLED:
                continue
            for g in c.groups:
                for m in c.models:
                    grouped.setdefault((g, m), []).append(c)
        for k, chans in grouped.items():
            by_priority: dict[int, list[ChannelInfo]] = {}
            for c in chans:
                by_priority.setdefault(c.priority, []).append(c)
            index.tiers[k] = [by_priority[p] for p in sorted(by_priority, reverse=True)]
            index.models_by_group.setdefault(k[0], []).append(k[1])
        for g in index.models_by_group:
            index.models_by_group[g] = sorted(set(index.models_by_group[g]))
        return index


class ChannelCache:
    def __init__(self) -> None:
        self._index: ChannelIndex | None = None
        self._expires = 0.0
        self._generation = 0
        bus.subscribe("channels", self._invalidate)

    def _invalidate(self, _event: str) -> None:
        self._generation += 1
        self._index = None

    async def index(self) -> ChannelIndex:
        idx = self._index
        if idx is not None and self._expires > time.monotonic():
            return idx
        generation = self._generation
        idx = await sync_to_async(self._load)()
        if generation == self._generation:  # else it may predate a change: the next request reloads
            self._index = idx
            self._expires = time.monotonic() + _ttl()
        return idx

    @staticmethod
    def _load() -> ChannelIndex:
        from relay.models import Channel

        return ChannelIndex.build([channel_info(c) for c in Channel.objects.all()])

    def mark_disabled(self, channel_id: int) -> None:
        """Stop choosing a channel in this process immediately (others learn via the bus)."""
        idx = self._index
        if idx is not None and channel_id in idx.channels:
            idx.channels[channel_id].status = ChannelStatus.AUTO_DISABLED

    def mark_key_disabled(self, channel_id: int, key_index: int) -> None:
        """Stop using one key of a multi-key channel in this process immediately."""
        idx = self._index
        channel = idx.channels.get(channel_id) if idx is not None else None
        if channel is not None:
            channel.live_keys = tuple(i for i in channel.live_keys if i != key_index)


tokens = TokenCache()
users = UserCache()
channels = ChannelCache()


async def caught_up() -> bool:
    """Call only when a request is about to fail for want of a token, user, channel or option:
    True if changes announced elsewhere were pending here (now applied: look again)."""
    return await bus.catch_up()


async def fresher_channels(index: ChannelIndex) -> ChannelIndex | None:
    """Call only when no channel in `index` fits: the reloaded index if this catch-up (or an
    earlier one) dropped `index` since, else None (nothing new to look at)."""
    await caught_up()
    fresh = await channels.index()
    return fresh if fresh is not index else None


async def ensure_options_loaded() -> None:
    if not options.loaded:
        await sync_to_async(options.load)()
