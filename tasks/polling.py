"""Background refresh of unfinished Midjourney and Suno tasks.

Runs in a Celery worker (sync). Every state change is a conditional UPDATE on rows that are still
unfinished (progress != "100%"), so when two pollers race, only the one whose UPDATE matched acts —
in particular, a failed task refunds its user and token exactly once.

Refunds: the user's and the token's balances are credited (billing.ledger), used_quota counters are
lowered, and a system log row (type 4) records it — the consume log row of the charge stays as it was.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
from django.db import transaction
from django.db.models import F

from accounts.models import Token, User
from billing import ledger
from billing.models import LOG_SYSTEM, Log
from newapi_site.options import options
from relay.models import Channel
from relay.state import channel_info
from relay.upstream import proxies

from .models import Midjourney, Task

log = logging.getLogger("newapi.tasks")
DONE = "100%"
TIMEOUT_MS = 3_600_000
FETCH_TIMEOUT = 15.0


def _key(channel: Channel) -> str:
    # A multi-key channel's column holds every key; ask with the one its submits use (the first enabled).
    return channel_info(channel).key


def _channels(ids: set[int]) -> dict[int, Any]:
    return {c.pk: c for c in Channel.objects.filter(pk__in=ids)}


def _client(channel: Any, default: httpx.Client, proxied: dict[str, httpx.Client]) -> httpx.Client:
    """The channel's route: through its proxy when it has one (clients kept for the round)."""
    proxy = proxies.of_row(channel)
    return proxies.sync_client(proxy, FETCH_TIMEOUT, proxied) if proxy else default


@contextlib.contextmanager
def _proxied() -> Iterator[dict[str, httpx.Client]]:
    opened: dict[str, httpx.Client] = {}
    try:
        yield opened
    finally:
        for c in opened.values():
            c.close()


def refund(user_id: int, token_id: int, quota: int, text: str) -> None:
    if quota <= 0:
        return
    ledger.credit_user(user_id, quota)
    User.objects.filter(pk=user_id).update(used_quota=F("used_quota") - quota)
    if token_id:
        ledger.credit_token(token_id, quota)
        Token.objects.filter(pk=token_id).update(used_quota=F("used_quota") - quota)
    username = User.objects.filter(pk=user_id).values_list("username", flat=True).first() or ""
    Log.objects.create(
        user_id=user_id, username=username, type=LOG_SYSTEM, content=text, quota=quota, token_id=token_id
    )


def format_quota(quota: int) -> str:
    if options.get_bool("DisplayInCurrencyEnabled"):
        return f"＄{quota / (options.get_float('QuotaPerUnit', 500000) or 1):.6f} 额度"
    return f"{quota} 点额度"


# -- Midjourney -----------------------------------------------------------------------------
def _fail_unfinished_mj(qs, **fields: Any) -> None:
    qs.exclude(progress=DONE).update(status="FAILURE", progress=DONE, **fields)


def finish_mj(task: Midjourney, fields: dict[str, Any], failed: bool) -> bool:
    """Write a polled state; True when this call made the change (and refunded a failure)."""
    with transaction.atomic():
        won = Midjourney.objects.filter(pk=task.pk).exclude(progress=DONE).update(**fields)
        if won and failed:
            refund(
                int(task.user_id),
                int(task.token_id),
                int(task.quota),
                f"构图失败 {task.mj_id}，补偿 {format_quota(int(task.quota))}",
            )
    return bool(won)


def mj_update(task: Midjourney, item: dict[str, Any] | None, now: int) -> tuple[dict[str, Any], bool] | None:
    """Fields to write for one task from its upstream DTO (None: unchanged)."""
    timed_out = now - int(task.submit_time or 0) > TIMEOUT_MS
    if item is None:
        if not timed_out:
            return None
        return {
            "status": "FAILURE",
            "progress": DONE,
            "fail_reason": "上游任务超时（超过1小时）",
            "code": 1,
        }, True
    fields: dict[str, Any] = {
        "code": 1,
        "progress": str(item.get("progress") or task.progress or ""),
        "prompt_en": str(item.get("promptEn") or ""),
        "state": str(item.get("state") or ""),
        "submit_time": int(item.get("submitTime") or task.submit_time or 0),
        "start_time": int(item.get("startTime") or 0),
        "finish_time": int(item.get("finishTime") or 0),
        "image_url": str(item.get("imageUrl") or ""),
        "status": str(item.get("status") or ""),
        "fail_reason": str(item.get("failReason") or ""),
    }
    if timed_out and fields["progress"] != DONE:
        fields["status"], fields["fail_reason"] = "FAILURE", "上游任务超时（超过1小时）"
    if isinstance(item.get("properties"), dict):
        props = item["properties"]
        fields["properties"] = orjson.dumps(
            {k: props.get(k, "") for k in ("finalPrompt", "finalZhPrompt")}
        ).decode()
    if item.get("buttons") is not None:
        fields["buttons"] = orjson.dumps(item["buttons"]).decode()
    failed = (fields["progress"] != DONE and fields["fail_reason"] != "") or (
        fields["progress"] == DONE and fields["status"] == "FAILURE"
    )
    if failed:
        fields["progress"] = DONE
    unchanged = task.code == 1 and all(getattr(task, k) == v for k, v in fields.items())
    return None if unchanged else (fields, failed)


def poll_midjourney() -> dict[str, int]:
    unfinished = Midjourney.objects.exclude(progress=DONE)
    _fail_unfinished_mj(unfinished.filter(mj_id=""))
    tasks = list(unfinished.exclude(mj_id=""))
    by_channel: dict[int, list[Midjourney]] = defaultdict(list)
    for t in tasks:
        by_channel[int(t.channel_id)].append(t)
    channels = _channels(set(by_channel))
    stats = {"polled": 0, "updated": 0, "refunded": 0}
    now = int(time.time() * 1000)
    with httpx.Client(timeout=FETCH_TIMEOUT) as client, _proxied() as proxied:
        for channel_id, group in by_channel.items():
            channel = channels.get(channel_id)
            if channel is None:
                _fail_unfinished_mj(
                    Midjourney.objects.filter(pk__in=[t.pk for t in group]),
                    fail_reason=f"获取渠道信息失败，请联系管理员，渠道ID：{channel_id}",
                )
                continue
            try:
                resp = _client(channel, client, proxied).post(
                    f"{(channel.base_url or '').rstrip('/')}/mj/task/list-by-condition",
                    json={"ids": [t.mj_id for t in group]},
                    headers={"mj-api-secret": _key(channel)},
                )
                items = resp.json() if resp.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                items = None
            if not isinstance(items, list):
                log.warning("midjourney poll: channel #%s answered badly, skipped", channel_id)
                continue
            known = {str(i.get("id")): i for i in items if isinstance(i, dict)}
            for task in group:
                stats["polled"] += 1
                change = mj_update(task, known.get(task.mj_id), now)
                if change is None:
                    continue
                fields, failed = change
                if finish_mj(task, fields, failed):
                    stats["updated"] += 1
                    stats["refunded"] += int(failed and task.quota > 0)
    return stats


# -- Suno -------------------------------------------------------------------------------
def finish_task(task: Task, fields: dict[str, Any], failed: bool) -> bool:
    with transaction.atomic():
        won = (
            Task.objects.filter(pk=task.pk)
            .exclude(progress=DONE)
            .update(updated_at=int(time.time()), **fields)
        )
        if won and failed:
            refund(
                int(task.user_id),
                int(task.token_id),
                int(task.quota),
                f"异步任务执行失败 {task.task_id}，补偿 {format_quota(int(task.quota))}",
            )
    return bool(won)


def suno_update(task: Task, item: dict[str, Any] | None, now: int) -> tuple[dict[str, Any], bool] | None:
    if item is None:
        if now - int(task.submit_time or 0) > TIMEOUT_MS // 1000:
            return {"status": "FAILURE", "progress": DONE, "fail_reason": "上游任务超时（超过1小时）"}, True
        return None
    fields: dict[str, Any] = {"data": item.get("data")}
    if item.get("status"):
        fields["status"] = str(item["status"])
    if item.get("fail_reason"):
        fields["fail_reason"] = str(item["fail_reason"])
    for key in ("submit_time", "start_time", "finish_time"):
        if item.get(key):
            fields[key] = int(item[key])
    status = fields.get("status", task.status)
    failed = bool(fields.get("fail_reason")) or status == "FAILURE"
    if failed:
        fields["status"] = "FAILURE"
    if failed or status == "SUCCESS":
        fields["progress"] = DONE
    if all(getattr(task, k) == v for k, v in fields.items()):
        return None
    return fields, failed


def poll_suno(limit: int = 500) -> dict[str, int]:
    unfinished = Task.objects.exclude(progress=DONE).filter(platform="suno")
    unfinished.filter(task_id="").update(status="FAILURE", progress=DONE)
    tasks = list(unfinished.exclude(task_id="").order_by("id")[:limit])
    by_channel: dict[int, list[Task]] = defaultdict(list)
    for t in tasks:
        by_channel[int(t.channel_id)].append(t)
    channels = _channels(set(by_channel))
    stats = {"polled": 0, "updated": 0, "refunded": 0}
    now = int(time.time())
    with httpx.Client(timeout=FETCH_TIMEOUT) as client, _proxied() as proxied:
        for channel_id, group in by_channel.items():
            channel = channels.get(channel_id)
            if channel is None:
                Task.objects.filter(pk__in=[t.pk for t in group]).exclude(progress=DONE).update(
                    status="FAILURE",
                    progress=DONE,
                    fail_reason=f"获取渠道信息失败，请联系管理员，渠道ID：{channel_id}",
                )
                continue
            try:
                resp = _client(channel, client, proxied).post(
                    f"{(channel.base_url or '').rstrip('/')}/suno/fetch",
                    json={"ids": [t.task_id for t in group]},
                    headers={"authorization": f"Bearer {_key(channel)}"},
                )
                envelope = resp.json() if resp.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                envelope = None
            if (
                not isinstance(envelope, dict)
                or envelope.get("code") != "success"
                or not isinstance(envelope.get("data"), list)
            ):
                log.warning("suno poll: channel #%s answered badly, skipped", channel_id)
                continue
            known = {str(i.get("task_id")): i for i in envelope["data"] if isinstance(i, dict)}
            for task in group:
                stats["polled"] += 1
                change = suno_update(task, known.get(task.task_id), now)
                if change is None:
                    continue
                fields, failed = change
                if finish_task(task, fields, failed):
                    stats["updated"] += 1
                    stats["refunded"] += int(failed and task.quota > 0)
    return stats
