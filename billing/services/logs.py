"""Reading and writing the `logs` table for the management API.

Admin log rows show the channel's name, read from relay's `channels` table through billing's
unmanaged ChannelUsage model, so billing never imports relay.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from accounts.models import Token, User
from billing.models import LOG_CONSUME, ChannelUsage, Log


def record_log(user_id: int, log_type: int, content: str, username: str = "") -> Log:
    """Top-up, manage and system logs are always written (only consume logs are optional)."""
    if not username:
        username = User.objects.filter(pk=user_id).values_list("username", flat=True).first() or ""
    return Log.objects.create(user_id=user_id, type=log_type, content=content, username=username)


@dataclass
class LogFilter:
    log_type: int = 0
    start: int = 0
    end: int = 0
    username: str = ""
    token_name: str = ""
    model_name: str = ""
    channel: int = 0
    group: str = ""

    @classmethod
    def from_query(cls, params: Any) -> LogFilter:
        def num(name: str) -> int:
            try:
                return int(params.get(name) or 0)
            except ValueError:
                return 0

        return cls(
            log_type=num("type"),
            start=num("start_timestamp"),
            end=num("end_timestamp"),
            username=(params.get("username") or "").strip(),
            token_name=(params.get("token_name") or "").strip(),
            model_name=(params.get("model_name") or "").strip(),
            channel=num("channel"),
            group=(params.get("group") or "").strip(),
        )

    def apply(self, qs: QuerySet[Log], *, with_type: bool = True, with_time: bool = True) -> QuerySet[Log]:
        if with_type and self.log_type:
            qs = qs.filter(type=self.log_type)
        if with_time and self.start:
            qs = qs.filter(created_at__gte=self.start)
        if with_time and self.end:
            qs = qs.filter(created_at__lte=self.end)
        if self.username:
            qs = qs.filter(username=self.username)
        if self.token_name:
            qs = qs.filter(token_name=self.token_name)
        if self.model_name:
            qs = qs.filter(**_model_lookup(self.model_name))
        if self.channel:
            qs = qs.filter(channel_id=self.channel)
        if self.group:
            qs = qs.filter(group=self.group)
        return qs


def _model_lookup(pattern: str) -> dict[str, str]:
    """model_name is an SQL LIKE pattern in New API: exact unless it contains `%`."""
    if "%" not in pattern:
        return {"model_name": pattern}
    parts = pattern.split("%")
    core = [p for p in parts if p]
    if len(core) == 1:
        starts, ends = pattern.startswith("%"), pattern.endswith("%")
        if starts and ends:
            return {"model_name__contains": core[0]}
        if ends:
            return {"model_name__startswith": core[0]}
        if starts:
            return {"model_name__endswith": core[0]}
    # Several wildcards: fall back to a regex with the same meaning.
    import re

    return {"model_name__regex": "^" + ".*".join(re.escape(p) for p in parts) + "$"}


def all_logs(f: LogFilter) -> QuerySet[Log]:
    return f.apply(Log.objects.all()).order_by("-id")


def logs_of(user_id: int, f: LogFilter) -> QuerySet[Log]:
    f.username = ""  # the caller's own logs: filtered by user id, not by a name they pass
    return f.apply(Log.objects.filter(user_id=user_id)).order_by("-id")


def token_name_suggestions(user_id: int) -> list[str]:
    """The log filter's suggestions: the names of the user's tokens, deleted ones too (their logs stay).

    Read from the tokens table: a DISTINCT over a heavy user's log rows would read every one of them.
    """
    names = Token.objects.filter(user_id=user_id).exclude(name="").exclude(name__isnull=True)
    return [name or "" for name in names.order_by("name").values_list("name", flat=True).distinct()[:100]]


def stat_logs(qs: QuerySet[Log], f: LogFilter) -> dict[str, int]:
    """quota over the time range; rpm/tpm over the last 60 s (type is always consume)."""
    consume = qs.filter(type=LOG_CONSUME)
    quota = f.apply(consume, with_type=False).aggregate(q=Sum("quota"))["q"] or 0
    recent = f.apply(consume, with_type=False, with_time=False).filter(created_at__gte=int(time.time()) - 60)
    agg = recent.aggregate(n=Count("id"), p=Sum("prompt_tokens"), c=Sum("completion_tokens"))
    return {"quota": int(quota), "rpm": int(agg["n"] or 0), "tpm": int((agg["p"] or 0) + (agg["c"] or 0))}


def search_logs(qs: QuerySet[Log], keyword: str, *, content: bool) -> QuerySet[Log]:
    cond = Q(pk__in=[])
    if keyword.strip().lstrip("-").isdigit():
        cond |= Q(type=int(keyword))
    if content and keyword:
        cond |= Q(content__startswith=keyword)
    return qs.filter(cond).order_by("-id")[:100]


def delete_logs_before(timestamp: int) -> int:
    deleted, _ = Log.objects.filter(created_at__lt=timestamp).delete()
    return deleted


def logs_of_token_key(key: str) -> list[Log]:
    """GET /api/log/token: every log of a key, soft-deleted tokens included, in id order."""
    token_id = Token.objects.filter(key=key).values_list("id", flat=True).first()
    if token_id is None:
        return []
    return list(Log.objects.filter(token_id=token_id).order_by("id"))


# -- rendering ---------------------------------------------------------------------------
def render_log(log: Log, channel_names: dict[int, str] | None = None) -> dict[str, Any]:
    return {
        "id": log.pk,
        "user_id": log.user_id,
        "created_at": log.created_at,
        "type": log.type,
        "content": log.content or "",
        "username": log.username or "",
        "token_name": log.token_name or "",
        "model_name": log.model_name or "",
        "quota": log.quota,
        "prompt_tokens": log.prompt_tokens,
        "completion_tokens": log.completion_tokens,
        "use_time": log.use_time,
        "is_stream": log.is_stream,
        "channel": log.channel_id or 0,
        "channel_name": (channel_names or {}).get(log.channel_id or 0, ""),
        "token_id": log.token_id,
        "group": log.group or "",
        "other": log.other or "",
    }


def render_admin_logs(logs: list[Log]) -> list[dict[str, Any]]:
    """Admin view: `channel_name` looked up from channels (two steps, so a separate log DB works)."""
    ids = {log.channel_id for log in logs if log.channel_id}
    names = dict(ChannelUsage.objects.filter(pk__in=ids).values_list("id", "name")) if ids else {}
    return [render_log(log, {k: v or "" for k, v in names.items()}) for log in logs]


def render_user_log(log: Log) -> dict[str, Any]:
    """User view: no channel name, no `other.admin_info`, and id obfuscated like New API (id % 1024)."""
    row = render_log(log)
    row["id"] = log.pk % 1024
    row["channel_name"] = ""
    row["channel"] = 0
    if row["other"]:
        try:
            other = json.loads(row["other"])
        except ValueError:
            other = None
        if isinstance(other, dict):
            other.pop("admin_info", None)
            row["other"] = json.dumps(other, ensure_ascii=False)
    return row
