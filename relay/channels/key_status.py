"""Changing the status of the keys of a multi-key channel (relay.channels.multi_key).

Every change is made on the row locked for update, then announced on the bus ("channels") so
every process reloads the channel with its new set of enabled keys. A channel whose last enabled
key goes is disabled automatically (status 3, "All keys are disabled"); an automatically
disabled channel that gets a key back is enabled again. A channel an admin disabled stays so.

`manage` is the admin's side, with New API's actions (POST /api/channel/multi_key/manage).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from newapi_site import bus
from relay.channels import multi_key
from relay.channels.multi_key import KEY_AUTO_DISABLED, KEY_ENABLED, KEY_MANUALLY_DISABLED
from relay.models import CHANNEL_AUTO_DISABLED, CHANNEL_ENABLED, Ability, Channel

MAX_PAGE_SIZE = 200


class KeyActionError(Exception):
    """An action that cannot be applied; the message is for the admin."""


@dataclass(slots=True)
class Outcome:
    message: str = ""
    data: Any = None
    columns: list[str] = field(default_factory=lambda: ["channel_info"])


def _other_info(row: Channel) -> dict[str, Any]:
    try:
        info = json.loads(row.other_info or "{}")
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _sync_channel_status(row: Channel, info: dict[str, Any], keys: list[str], out: Outcome) -> None:
    """Channel status follows its keys: none enabled -> auto-disabled; one back -> enabled again
    (only if it was auto-disabled: an admin's decision stands)."""
    has_live = bool(multi_key.live_indices(info, len(keys)))
    other = _other_info(row)
    if has_live and row.status == CHANNEL_AUTO_DISABLED:
        row.status = CHANNEL_ENABLED
        other.pop("status_reason", None)
        other.pop("status_time", None)
    elif not has_live and row.status == CHANNEL_ENABLED:
        row.status = CHANNEL_AUTO_DISABLED
        other.update(status_reason=multi_key.ALL_KEYS_DISABLED, status_time=int(time.time()))
    else:
        return
    row.other_info = json.dumps(other, ensure_ascii=False)
    out.columns += ["status", "other_info"]


def _mutate(channel_id: int, change: Callable[[Channel, dict[str, Any], list[str]], Outcome]) -> Outcome:
    """Apply `change` to the locked row and write back the columns it names."""
    with transaction.atomic():
        row = Channel.objects.select_for_update().filter(pk=channel_id).first()
        if row is None:
            raise KeyActionError("渠道不存在")
        info = multi_key.parse_info(row.channel_info)
        if not info["is_multi_key"]:
            raise KeyActionError("该渠道不是多密钥模式")
        keys = multi_key.split_keys(row.key)
        info["multi_key_size"] = len(keys)
        out = change(row, info, keys)
        _sync_channel_status(row, info, keys, out)
        row.channel_info = info
        columns = list(dict.fromkeys(out.columns))
        if not columns:
            return out
        # update() rather than save(): the save signal would rebuild abilities from a stale status
        Channel.objects.filter(pk=channel_id).update(**{c: getattr(row, c) for c in columns})
        if "status" in columns:
            Ability.objects.filter(channel_id=channel_id).update(enabled=row.status == CHANNEL_ENABLED)
    bus.publish("channels")
    return out


def _set(info: dict[str, Any], index: int, status: int, reason: str) -> None:
    info["multi_key_status_list"][index] = status
    info.setdefault("multi_key_disabled_time", {})[index] = int(time.time())
    info.setdefault("multi_key_disabled_reason", {})[index] = reason


def _clear(info: dict[str, Any], index: int) -> None:
    for name in ("multi_key_status_list", "multi_key_disabled_time", "multi_key_disabled_reason"):
        info.get(name, {}).pop(index, None)


def disable_key(channel_id: int, index: int, reason: str) -> bool:
    """One key auto-disabled (the upstream rejected it); False if it was not enabled."""
    return _flip(channel_id, index, KEY_ENABLED, lambda info: _set(info, index, KEY_AUTO_DISABLED, reason))


def enable_key(channel_id: int, index: int) -> bool:
    """One auto-disabled key enabled again (its test passed); False if it was not auto-disabled."""
    return _flip(channel_id, index, KEY_AUTO_DISABLED, lambda info: _clear(info, index))


def _flip(channel_id: int, index: int, expected: int, apply: Callable[[dict[str, Any]], None]) -> bool:
    """Apply a change to one key only if it is in the `expected` status; True if it changed."""
    changed: list[bool] = []

    def change(row: Channel, info: dict[str, Any], keys: list[str]) -> Outcome:
        if 0 <= index < len(keys) and multi_key.key_status(info, index) == expected:
            apply(info)
            changed.append(True)
            return Outcome()
        return Outcome(columns=[])

    try:
        _mutate(channel_id, change)
    except KeyActionError:
        return False
    return bool(changed)


# -- the admin's actions ---------------------------------------------------------------------------
def _index_of(keys: list[str], index: Any) -> int:
    if index is None or isinstance(index, bool):
        raise KeyActionError("未指定要操作的密钥索引")
    try:
        i = int(index)
    except (TypeError, ValueError):
        raise KeyActionError("未指定要操作的密钥索引") from None
    if not 0 <= i < len(keys):
        raise KeyActionError("密钥索引超出范围")
    return i


def _keep(row: Channel, info: dict[str, Any], keys: list[str], drop: set[int], out: Outcome) -> None:
    """Remove the keys at `drop`, renumbering the statuses of the others."""
    remaining: list[str] = []
    maps = ("multi_key_status_list", "multi_key_disabled_time", "multi_key_disabled_reason")
    renumbered: dict[str, dict[int, Any]] = {name: {} for name in maps}
    for old, key in enumerate(keys):
        if old in drop:
            continue
        for name in maps:
            if old in info.get(name, {}):
                renumbered[name][len(remaining)] = info[name][old]
        remaining.append(key)
    info.update(renumbered)
    info["multi_key_size"] = len(remaining)
    info["multi_key_polling_index"] = 0
    keys[:] = remaining
    row.key = "\n".join(remaining)
    out.columns = ["key", "channel_info"]


def _action(action: str, index: Any) -> Callable[[Channel, dict[str, Any], list[str]], Outcome]:
    def change(row: Channel, info: dict[str, Any], keys: list[str]) -> Outcome:
        statuses = info["multi_key_status_list"]
        if action == "enable_key":
            _clear(info, _index_of(keys, index))
            return Outcome("密钥已启用")
        if action == "disable_key":
            _set(info, _index_of(keys, index), KEY_MANUALLY_DISABLED, "manual operation")
            return Outcome("密钥已禁用")
        if action == "enable_all_keys":
            count = sum(1 for i in range(len(keys)) if multi_key.key_status(info, i) != KEY_ENABLED)
            for name in ("multi_key_status_list", "multi_key_disabled_time", "multi_key_disabled_reason"):
                info[name] = {}
            return Outcome(f"已启用 {count} 个密钥")
        if action == "disable_all_keys":
            live = multi_key.live_indices(info, len(keys))
            if not live:
                raise KeyActionError("没有可禁用的密钥")
            for i in live:
                _set(info, i, KEY_MANUALLY_DISABLED, "manual operation")
            return Outcome(f"已禁用 {len(live)} 个密钥")
        if action == "delete_key":
            i = _index_of(keys, index)
            if len(keys) == 1:
                raise KeyActionError("不能删除最后一个密钥")
            out = Outcome("密钥已删除")
            _keep(row, info, keys, {i}, out)
            return out
        if action == "delete_disabled_keys":
            drop = {i for i in range(len(keys)) if statuses.get(i) == KEY_AUTO_DISABLED}
            if not drop:
                raise KeyActionError("没有需要删除的自动禁用密钥")
            if len(drop) == len(keys):
                raise KeyActionError("不能删除所有密钥")
            out = Outcome(f"已删除 {len(drop)} 个自动禁用的密钥", data=len(drop))
            _keep(row, info, keys, drop, out)
            return out
        raise KeyActionError("不支持的操作")

    return change


def manage(channel_id: int, action: str, index: Any = None) -> Outcome:
    """Apply one of New API's multi-key actions; raises KeyActionError with the admin's message."""
    return _mutate(channel_id, _action(action, index))


def key_statuses(
    channel: Channel, page: int = 1, page_size: int = 50, status: int | None = None
) -> dict[str, Any]:
    """The `get_key_status` listing: each key's index, status, reason, time and a short preview."""
    info = multi_key.parse_info(channel.channel_info)
    if not info["is_multi_key"]:
        raise KeyActionError("该渠道不是多密钥模式")
    keys = multi_key.split_keys(channel.key)
    reasons = info.get("multi_key_disabled_reason", {})
    times = info.get("multi_key_disabled_time", {})
    rows = []
    counts = {KEY_ENABLED: 0, KEY_MANUALLY_DISABLED: 0, KEY_AUTO_DISABLED: 0}
    for i, key in enumerate(keys):
        s = multi_key.key_status(info, i)
        counts[s] = counts.get(s, 0) + 1
        if status is not None and s != status:
            continue
        row: dict[str, Any] = {"index": i, "status": s, "key_preview": multi_key.preview(key)}
        if s != KEY_ENABLED:
            if i in times:
                row["disabled_time"] = times[i]
            if i in reasons:
                row["reason"] = reasons[i]
        rows.append(row)
    page = max(page, 1)
    page_size = min(page_size if page_size > 0 else 50, MAX_PAGE_SIZE)
    return {
        "keys": rows[(page - 1) * page_size : page * page_size],
        "total": len(rows),
        "page": page,
        "page_size": page_size,
        "total_pages": max(math.ceil(len(rows) / page_size), 1),
        "enabled_count": counts[KEY_ENABLED],
        "manual_disabled_count": counts[KEY_MANUALLY_DISABLED],
        "auto_disabled_count": counts[KEY_AUTO_DISABLED],
    }
