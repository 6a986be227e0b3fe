"""POST /mj/notify: Midjourney-Proxy's progress callback.

New API put this route behind user-token auth, so a proxy's callback could never reach it. Here
the proxy proves who it is with its channel's key (the `mj-api-secret` it already shares with us),
sent as the `mj-api-secret` header or, for a plain notifyHook URL, the `secret` query parameter.
Only a task with that mj_id on that channel is touched, and the callback goes through the same
conditional update as the poller (a failure refunds once; a finished task stays as it is).
"""

from __future__ import annotations

import hmac
import time
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async

from relay.edge.wire import ClientRequest, Response
from relay.models import Channel

from . import polling
from .mj import MjError, parse_json
from .models import Midjourney


def notify_secret(req: ClientRequest) -> str:
    secret = req.headers.get("mj-api-secret", "").removeprefix("Bearer ").strip()
    if not secret:
        secret = (parse_qs(req.query).get("secret") or [""])[0].strip()
    return secret


def _task_for(mj_id: str, secret: str) -> Midjourney | None:
    tasks = list(Midjourney.objects.filter(mj_id=mj_id).order_by("-id"))
    keys = dict(Channel.objects.filter(pk__in={t.channel_id for t in tasks}).values_list("pk", "key"))
    for task in tasks:
        key = keys.get(task.channel_id) or ""
        if key and hmac.compare_digest(key.encode(), secret.encode()):
            return task
    return None


def apply_notify(mj_id: str, secret: str, item: dict[str, Any]) -> bool:
    """False when no task with this id belongs to a channel with this key."""
    task = _task_for(mj_id, secret)
    if task is None:
        return False
    change = polling.mj_update(task, item, int(time.time() * 1000))
    if change is not None:
        fields, failed = change
        polling.finish_mj(task, fields, failed)
    return True


async def notify(req: ClientRequest, **_: Any) -> Response:
    try:
        body = parse_json(req.body)
        mj_id, secret = str(body.get("id") or ""), notify_secret(req)
        if not mj_id or not secret or not await sync_to_async(apply_notify)(mj_id, secret, body):
            # One answer for "no such task" and "wrong key": the callback is not an oracle for task ids.
            raise MjError(4, "midjourney_task_not_found", status=401)
    except MjError as err:
        return err.response()
    return Response(200, b"", b"text/plain")
