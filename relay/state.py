"""In-process snapshots of tokens, users and channels for the relay hot path.

A warm relay request reads nothing from the database: entries are loaded once (off the event
loop) and dropped when newapi_site.bus reports a change, or after SYNC_FREQUENCY seconds as a
safety net for a missed message. Balances are NOT here: they live in billing.ledger.
"""

from __future__ import annotations

import ipaddress
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings

from newapi_site import bus

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NEGATIVE_TTL = 5.0


def _ttl() -> float:
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


def channel_info(c: Any) -> ChannelInfo:
    return ChannelInfo(
        id=c.pk,
        type=int(c.type or 0),
        name=c.name or "",
        key=c.key or "",
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
    )


class _Entry:
    __slots__ = ("value", "expires")

    def __init__(self, value: Any, ttl: float) -> None:
        self.value = value
        self.expires = time.monotonic() + ttl


class TokenCache:
    def __init__(self) -> None:
        self._by_key: dict[str, _Entry] = {}
        bus.subscribe("token:", self._invalidate)
        bus.subscribe("tokens", lambda _e: self._by_key.clear())

    def _invalidate(self, event: str) -> None:
        if event.startswith("token:"):
            self._by_key.pop(event[6:], None)
        else:
            self._by_key.clear()

    async def get(self, key: str) -> TokenInfo | None:
        entry = self._by_key.get(key)
        if entry is not None and entry.expires > time.monotonic():
            return entry.value
        info = await sync_to_async(self._load)(key)
        self._by_key[key] = _Entry(info, _ttl() if info else _NEGATIVE_TTL)
        return info

    @staticmethod
    def _load(key: str) -> TokenInfo | None:
        from accounts.models import Token

        t = Token.live.filter(key=key).first()
        if t is None:
            return None
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


class UserCache:
    def __init__(self) -> None:
        self._by_id: dict[int, _Entry] = {}
        bus.subscribe("user:", self._invalidate)

    def _invalidate(self, event: str) -> None:
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
        info = await sync_to_async(self._load)(user_id)
        self._by_id[user_id] = _Entry(info, _ttl() if info else _NEGATIVE_TTL)
        return info

    @staticmethod
    def _load(user_id: int) -> UserInfo | None:
        from accounts.models import User

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
            if c.status != 1:
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

    def pick(self, group: str, model: str, exclude: set[int]) -> ChannelInfo | None:
        """Weighted random (weight + 10) inside the highest tier that still has candidates.

        Retries never pick a channel that already failed in this request (`exclude`); a tier whose
        channels all failed is skipped, so retries walk down the priorities.
        """
        tiers = self.tiers.get((group, model))
        if not tiers:
            return None
        for tier in tiers:
            candidates = [c for c in tier if c.id not in exclude and c.status == 1]
            if not candidates:
                continue
            if len(candidates) == 1:
                return candidates[0]
            total = sum(c.weight + 10 for c in candidates)
            r = random.uniform(0, total)
            for c in candidates:
                r -= c.weight + 10
                if r <= 0:
                    return c
            return candidates[-1]
        return None


class ChannelCache:
    def __init__(self) -> None:
        self._index: ChannelIndex | None = None
        self._expires = 0.0
        bus.subscribe("channels", self._invalidate)

    def _invalidate(self, _event: str) -> None:
        self._index = None

    async def index(self) -> ChannelIndex:
        idx = self._index
        if idx is not None and self._expires > time.monotonic():
            return idx
        idx = await sync_to_async(self._load)()
        self._index = idx
        self._expires = time.monotonic() + _ttl()
        return idx

    @staticmethod
    def _load() -> ChannelIndex:
        from .models import Channel

        return ChannelIndex.build([channel_info(c) for c in Channel.objects.all()])

    def mark_disabled(self, channel_id: int) -> None:
        """Stop choosing a channel in this process immediately (others learn via the bus)."""
        idx = self._index
        if idx is not None and channel_id in idx.channels:
            idx.channels[channel_id].status = 3


tokens = TokenCache()
users = UserCache()
channels = ChannelCache()


async def ensure_options_loaded() -> None:
    from accounts.options import options

    if not options.loaded:
        await sync_to_async(options.load)()
