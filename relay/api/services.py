"""Channel administration: create (one channel per key line), partial update, tags, deletes, model fetch."""

from __future__ import annotations

import json
from typing import Any

import httpx
from django.db import transaction
from django.db.models import Q, QuerySet

from accounts.models import User
from newapi_site.api.base import ApiError
from newapi_site.roles import ROLE_ROOT
from relay.adaptors.registry import effective_base_url
from relay.channels import limits, multi_key
from relay.channels.abilities import fix_abilities, rebuild_abilities
from relay.channels.types import ChannelType
from relay.models import CHANNEL_AUTO_DISABLED, CHANNEL_ENABLED, CHANNEL_MANUALLY_DISABLED, Channel

# Fields an admin may set through the API; `key` is write-only and `used_quota`/balances are ours.
EDITABLE = (
    "type",
    "openai_organization",
    "test_model",
    "status",
    "name",
    "weight",
    "base_url",
    "other",
    "models",
    "group",
    "model_mapping",
    "status_code_mapping",
    "priority",
    "auto_ban",
    "tag",
    "setting",
    "param_override",
    "other_info",
)
_INT_FIELDS = {"type", "status", "weight", "priority", "auto_ban"}
_JSON_FIELDS = {"model_mapping", "status_code_mapping", "setting", "param_override"}


def render_channel(channel: Channel) -> dict[str, Any]:
    """Every column but the key: upstream secrets never leave through the API."""
    data = {field: getattr(channel, field) for field in EDITABLE}
    data.update(
        {
            "id": channel.pk,
            "key": "",
            "channel_info": multi_key.dump_info(multi_key.parse_info(channel.channel_info)),
            "created_time": channel.created_time,
            "test_time": channel.test_time,
            "response_time": channel.response_time,
            "balance": channel.balance,
            "balance_updated_time": channel.balance_updated_time,
            "used_quota": channel.used_quota,
        }
    )
    return data


def ordered(qs: QuerySet[Channel], id_sort: bool) -> QuerySet[Channel]:
    return qs.order_by("-id") if id_sort else qs.order_by("-priority", "-id")


def list_channels(page: int, size: int, id_sort: bool, tag_mode: bool) -> list[Channel]:
    if not tag_mode:
        return list(ordered(Channel.objects.all(), id_sort)[page * size : (page + 1) * size])
    # Tag mode pages over the distinct non-empty tags, then lists each tag's channels; untagged
    # channels are not part of it (the console's tag rows act on a tag and refuse an empty one).
    tags = list(
        Channel.objects.exclude(tag__isnull=True)
        .exclude(tag="")
        .values_list("tag", flat=True)
        .distinct()
        .order_by("tag")
    )
    page_tags = tags[page * size : (page + 1) * size]
    return list(ordered(Channel.objects.filter(tag__in=page_tags), id_sort))


def search_channels(keyword: str, group: str, model: str, id_sort: bool) -> list[Channel]:
    qs = Channel.objects.all()
    if keyword:
        # Never the key: a match would tell an admin, who may not read keys, that a guess is right.
        cond = Q(name__contains=keyword) | Q(tag=keyword)
        if keyword.isdigit():
            cond |= Q(pk=int(keyword))
        qs = qs.filter(cond)
    if model:
        qs = qs.filter(models__contains=model)
    channels = list(ordered(qs, id_sort))
    if group:
        channels = [c for c in channels if group in c.group_list()]
    return channels


def get_channel(channel_id: int) -> Channel:
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        raise ApiError("渠道不存在")
    return channel


def _clean_fields(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in EDITABLE:
        if name not in data:
            continue
        value = data[name]
        if name in _INT_FIELDS:
            if value is None:
                continue
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise ApiError(f"无效的参数: {name}") from None
        elif value is not None and not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False) if name in _JSON_FIELDS else str(value)
        if name in _JSON_FIELDS and value:
            try:
                json.loads(value)
            except ValueError:
                raise ApiError(f"{name} 不是合法的 JSON") from None
        if name == "setting" and (problem := limits.setting_problem(value)) is not None:
            raise ApiError(problem)
        fields[name] = value
    if "models" in fields:
        models = [m.strip() for m in (fields["models"] or "").split(",") if m.strip()]
        if any(len(m) > 255 for m in models):
            raise ApiError("模型名称过长")
        fields["models"] = ",".join(dict.fromkeys(models))
    if "group" in fields:
        fields["group"] = ",".join(
            dict.fromkeys(g.strip() for g in (fields["group"] or "").split(",") if g.strip())
        )
    if "status" in fields and fields["status"] not in (
        0,
        CHANNEL_ENABLED,
        CHANNEL_MANUALLY_DISABLED,
        CHANNEL_AUTO_DISABLED,
    ):
        raise ApiError("无效的参数: status")
    if not partial:
        fields.setdefault("group", "default")
    return fields


def _check_vertex(channel_type: int, other: str | None) -> None:
    if channel_type != ChannelType.VERTEX_AI:
        return
    if not other:
        raise ApiError("部署地区不能为空")
    if other.strip().startswith("{"):
        try:
            regions = json.loads(other)
        except ValueError:
            raise ApiError("部署地区必须是标准的Json格式") from None
        if not isinstance(regions, dict) or "default" not in regions:
            raise ApiError("部署地区必须包含default字段")


ADD_MODES = ("single", "batch", "multi_to_single")


def create_channels(data: dict[str, Any]) -> list[Channel]:
    """The channel's fields at the top level (one channel per key line), or New API's
    {"mode": "single" | "batch" | "multi_to_single", "multi_key_mode": ..., "channel": {...}}:
    one channel, one per key, or one channel holding every key."""
    mode, key_mode = "batch", ""
    if isinstance(data.get("channel"), dict):
        mode, key_mode = str(data.get("mode") or ""), str(data.get("multi_key_mode") or multi_key.MODE_RANDOM)
        if mode not in ADD_MODES:
            raise ApiError("不支持的添加模式")
        if mode == "multi_to_single" and key_mode not in multi_key.MODES:
            raise ApiError("不支持的多密钥轮询模式")
        data = data["channel"]
    fields = _clean_fields(data, partial=False)
    raw_key = str(data.get("key") or "")
    channel_type = fields.get("type", 1)
    _check_vertex(channel_type, fields.get("other"))
    # Vertex keys are multi-line JSON documents: kept whole, or the objects of a JSON array.
    vertex = channel_type == ChannelType.VERTEX_AI
    if mode == "single" or (vertex and not raw_key.strip().startswith("[")):
        keys = [raw_key.strip()]
    else:
        keys = multi_key.clean_keys(raw_key, json_array=vertex)
    keys = [k for k in keys if k]
    if not keys:
        raise ApiError("密钥不能为空")
    if mode == "multi_to_single":
        channel = Channel(key="\n".join(keys), **fields)
        channel.channel_info = multi_key.new_info(len(keys), key_mode)
        channel.save()
        return [channel]
    with transaction.atomic():
        return [Channel.objects.create(key=key, **fields) for key in keys]


def endpoint_changes(channel: Channel, fields: dict[str, Any]) -> list[str]:
    """The fields of this edit that change where the channel's key is sent."""
    names: list[str] = [
        n for n in ("type", "base_url") if n in fields and (fields[n] or "") != (getattr(channel, n) or "")
    ]
    # Vertex AI builds its host from the region in `other`.
    if (
        ChannelType.VERTEX_AI in (channel.type, fields.get("type"))
        and "other" in fields
        and (fields["other"] or "") != (channel.other or "")
    ):
        names.append("other")
    return names


def check_endpoint_change(actor: User, changes: list[str], new_key: bool) -> None:
    """Only root may send an existing key somewhere else; an admin may with a key of their own."""
    if changes and not new_key and actor.role < ROLE_ROOT:
        raise ApiError("只有超级管理员可以在不更换密钥的情况下修改渠道类型或 Base URL，请同时填写新的密钥")


def update_channel(actor: User, data: dict[str, Any]) -> Channel:
    """Partial update: fields present in the body change; an empty or absent key keeps the old one."""
    try:
        raw_id: Any = data.get("id")  # None: TypeError below
        channel = get_channel(int(raw_id))
    except (TypeError, ValueError):
        raise ApiError("无效的参数: id") from None
    fields = _clean_fields(data, partial=True)
    key = str(data.get("key") or "").strip()
    check_endpoint_change(actor, endpoint_changes(channel, fields), bool(key))
    changed = [name for name, value in fields.items() if getattr(channel, name) != value]
    for name in changed:
        setattr(channel, name, fields[name])
    info = multi_key.parse_info(channel.channel_info)
    if info["is_multi_key"]:
        key = _multi_key_update(channel, info, data, key)
        if info != multi_key.parse_info(channel.channel_info):
            channel.channel_info = info
            changed.append("channel_info")
    if key and key != channel.key:
        channel.key = key
        changed.append("key")
    _check_vertex(channel.type, channel.other)
    save_channel_fields(channel, changed)
    return channel


def _multi_key_update(channel: Channel, info: dict[str, Any], data: dict[str, Any], key: str) -> str:
    """A multi-key channel's edit: its key mode, and new keys appended ("key_mode": "append",
    statuses kept) or replacing the old ones (statuses start over). Returns the key to store."""
    mode = str(data.get("multi_key_mode") or "")
    if mode:
        if mode not in multi_key.MODES:
            raise ApiError("不支持的多密钥轮询模式")
        info["multi_key_mode"] = mode
    if not key:
        return key
    new = multi_key.clean_keys(key, json_array=channel.type == ChannelType.VERTEX_AI)
    if data.get("key_mode") == "append":
        old = multi_key.split_keys(channel.key)
        new = old + [k for k in new if k not in set(old)]
    else:
        for name in ("multi_key_status_list", "multi_key_disabled_reason", "multi_key_disabled_time"):
            info[name] = {}
        info["multi_key_polling_index"] = 0
    if not new:
        raise ApiError("密钥不能为空")
    info["multi_key_size"] = len(new)
    return "\n".join(new)


def save_channel_fields(channel: Channel, names: list[str]) -> None:
    """Write only `names`, so a concurrent auto-disable (or balance, response time) is kept.

    Channel.save() runs, so the post_save signal rebuilds abilities and publishes "channels"; the
    abilities are built from this instance, so a status changed meanwhile is read back after.
    """
    if not names:
        return
    channel.save(update_fields=names)
    if "status" not in names:
        status = Channel.objects.filter(pk=channel.pk).values_list("status", flat=True).first()
        if status is not None and status != channel.status:
            channel.status = status
            rebuild_abilities(channel)


def delete_channel(channel_id: int) -> None:
    get_channel(channel_id).delete()


def delete_channels(ids: list[int]) -> int:
    with transaction.atomic():
        deleted = Channel.objects.filter(pk__in=ids)
        count = deleted.count()
        deleted.delete()  # per-row post_delete removes abilities
    return count


def delete_disabled_channels() -> int:
    qs = Channel.objects.filter(status__in=[CHANNEL_MANUALLY_DISABLED, CHANNEL_AUTO_DISABLED])
    count = qs.count()
    qs.delete()  # unlike New API, the abilities go too (post_delete)
    return count


def _save_each(qs: QuerySet[Channel], **changes: Any) -> int:
    count = 0
    with transaction.atomic():
        for channel in qs:
            for name, value in changes.items():
                setattr(channel, name, value)
            save_channel_fields(channel, list(changes))
            count += 1
    return count


def set_tag_status(tag: str, status: int) -> int:
    if not tag:
        raise ApiError("标签不能为空")
    return _save_each(Channel.objects.filter(tag=tag), status=status)


def edit_tag(data: dict[str, Any]) -> int:
    tag = str(data.get("tag") or "")
    if not tag:
        raise ApiError("标签不能为空")
    changes: dict[str, Any] = {}
    if data.get("new_tag"):
        changes["tag"] = str(data["new_tag"])
    for name in ("priority", "weight"):
        if data.get(name) is not None:
            changes[name] = int(data[name])
    if data.get("model_mapping") is not None:
        changes.update(_clean_fields({"model_mapping": data["model_mapping"]}, partial=True))
    if data.get("models"):
        changes.update(_clean_fields({"models": data["models"]}, partial=True))
    if data.get("groups"):
        changes.update(_clean_fields({"group": data["groups"]}, partial=True))
    return _save_each(Channel.objects.filter(tag=tag), **changes)


def set_tag_of(ids: list[int], tag: str | None) -> int:
    _save_each(Channel.objects.filter(pk__in=ids), tag=tag or None)
    return len(ids)


def repair_abilities() -> int:
    return fix_abilities()


def fetch_upstream_models(channel_type: int, base_url: str | None, key: str) -> list[str]:
    """GET {base}/v1/models with the first key line; Gemini uses its OpenAI-compatible path."""
    base = effective_base_url(channel_type, base_url).rstrip("/")
    if not base:
        raise ApiError("渠道未设置 Base URL")
    first_key = (key or "").strip().split("\n")[0].strip()
    path = "/v1beta/openai/models" if channel_type == ChannelType.GEMINI else "/v1/models"
    try:
        resp = httpx.get(base + path, headers={"Authorization": f"Bearer {first_key}"}, timeout=20)
        resp.raise_for_status()
        payload = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ApiError(f"获取模型列表失败: {exc}") from None
    items = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise ApiError("获取模型列表失败: 上游返回格式错误")
    return [str(item.get("id")) for item in items if isinstance(item, dict) and item.get("id")]
