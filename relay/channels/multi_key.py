"""Multi-key channels: one channel row whose `key` holds several upstream keys, one per line.

The channel's `channel_info` column (New API's layout, so either gateway reads the other's rows)
says whether the channel is multi-key, how a key is chosen per request ("random", or "polling":
each in turn) and the status of every key by its line index (missing = enabled, 2 = disabled by
an admin, 3 = disabled automatically). Key indices are line positions, counted as New API counts
them, so a status list written by one gateway names the same keys in the other.

This module only reads and shapes that data; choosing a key per request is relay.channels.key_choice,
changing a key's status is relay.channels.key_status.
"""

from __future__ import annotations

import json
from typing import Any

from relay.channels.types import ChannelStatus

MODE_RANDOM = "random"
MODE_POLLING = "polling"
MODES = (MODE_RANDOM, MODE_POLLING)

KEY_ENABLED = int(ChannelStatus.ENABLED)
KEY_MANUALLY_DISABLED = int(ChannelStatus.MANUALLY_DISABLED)
KEY_AUTO_DISABLED = int(ChannelStatus.AUTO_DISABLED)
ALL_KEYS_DISABLED = "All keys are disabled"


def empty_info() -> dict[str, Any]:
    """A single-key channel's channel_info: never NULL, New API scans the column into a struct."""
    return {
        "is_multi_key": False,
        "multi_key_size": 0,
        "multi_key_status_list": None,
        "multi_key_polling_index": 0,
        "multi_key_mode": "",
    }


def new_info(size: int, mode: str) -> dict[str, Any]:
    info = empty_info()
    info.update(is_multi_key=True, multi_key_size=size, multi_key_mode=mode)
    return info


def _int_map(value: Any) -> dict[int, Any]:
    """A JSON object keyed by key index (strings on the wire) as {int: value}."""
    if not isinstance(value, dict):
        return {}
    out: dict[int, Any] = {}
    for k, v in value.items():
        try:
            out[int(k)] = v
        except (TypeError, ValueError):
            continue
    return out


def parse_info(raw: Any) -> dict[str, Any]:
    """The column as stored (dict, JSON text or bytes, or NULL) as a dict with every field present;
    the per-key maps keyed by int."""
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else None
        except ValueError:
            raw = None
    info = empty_info()
    if isinstance(raw, dict):
        info.update(raw)
    info["is_multi_key"] = bool(info.get("is_multi_key"))
    info["multi_key_mode"] = str(info.get("multi_key_mode") or "")
    for name in ("multi_key_size", "multi_key_polling_index"):
        try:
            info[name] = int(info.get(name) or 0)
        except (TypeError, ValueError):
            info[name] = 0
    statuses = {i: s for i, s in _int_map(info.get("multi_key_status_list")).items() if isinstance(s, int)}
    info["multi_key_status_list"] = statuses
    for name in ("multi_key_disabled_reason", "multi_key_disabled_time"):
        if name in info:
            info[name] = _int_map(info[name])
    return info


def dump_info(info: dict[str, Any]) -> dict[str, Any]:
    """`info` as it is stored: per-key maps keyed by strings (JSON), empty optional maps left out."""
    out = dict(info)
    statuses = info.get("multi_key_status_list")
    out["multi_key_status_list"] = {str(k): v for k, v in statuses.items()} if statuses else None
    for name in ("multi_key_disabled_reason", "multi_key_disabled_time"):
        value = info.get(name)
        if value:
            out[name] = {str(k): v for k, v in value.items()}
        else:
            out.pop(name, None)
    return out


def split_keys(raw: str | None) -> list[str]:
    """The channel's keys by index: a JSON array (Vertex service accounts) or one per line.

    Lines are split the way New API splits them (outer newlines trimmed, inner empty lines kept)
    so indices agree; a carriage return left by a Windows paste is not part of a key."""
    if not raw:
        return []
    trimmed = raw.strip()
    if trimmed.startswith("["):
        try:
            items = json.loads(trimmed)
        except ValueError:
            items = None
        if isinstance(items, list):
            return [
                item if isinstance(item, str) else json.dumps(item, ensure_ascii=False, separators=(",", ":"))
                for item in items
            ]
    return [line.strip("\r") for line in raw.strip("\n").split("\n")]


def clean_keys(raw: str | None, json_array: bool = False) -> list[str]:
    """Keys as an admin entered them for a new channel: non-empty lines, or the objects of a JSON
    array (kept whole, one per key) when the channel's keys are JSON documents."""
    text = (raw or "").strip()
    if json_array or text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list):
            keys = []
            for item in items:
                if isinstance(item, str):
                    item = item.strip()
                    if item.startswith("{"):  # an object sent as a JSON string
                        try:
                            item = json.loads(item)
                        except ValueError:
                            pass
                if isinstance(item, dict):
                    keys.append(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
                elif isinstance(item, str) and item:
                    keys.append(item)
            return keys
        if json_array:
            return [text] if text else []
    return [k.strip() for k in text.split("\n") if k.strip()]


def key_status(info: dict[str, Any], index: int) -> int:
    return int(info["multi_key_status_list"].get(index, KEY_ENABLED))


def live_indices(info: dict[str, Any], size: int) -> tuple[int, ...]:
    return tuple(i for i in range(size) if key_status(info, i) == KEY_ENABLED)


def preview(key: str) -> str:
    """Enough of a key to tell it from its neighbours, never enough to use it."""
    key = key.strip()
    if len(key) <= 8:
        return key[:2] + "…" if key else ""
    return f"{key[:4]}…{key[-4:]}"
