"""The Suno relay: submit music or lyrics, fetch the caller's tasks.

Errors use New API's task envelope `{"code", "message", "data": null}`.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
from asgiref.sync import sync_to_async

from relay.auth import Caller
from relay.channels import choice
from relay.channels.choice import Route
from relay.channels.types import ChannelStatus
from relay.edge.wire import ClientRequest, Response
from relay.modes.pipeline import NO_RETRY_STATUSES
from relay.state import ChannelInfo
from relay.upstream import http, proxies

from . import charging, routing
from .models import Task

PLATFORM = "suno"
ACTIONS = {"MUSIC", "LYRICS"}
STRING_FIELDS = ("gpt_description_prompt", "prompt", "mv", "title", "tags", "task_id", "continue_clip_id")


class TaskError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, upstream: bool = False) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status
        self.upstream = upstream  # the channel's failure (may be retried elsewhere), not the request's

    def response(self) -> Response:
        message = self.message
        if self.status == 429:
            message = "当前分组上游负载已饱和，请稍后再试"
        return Response(self.status, orjson.dumps({"code": self.code, "message": message, "data": None}))


def build_request(action: str, raw: bytes) -> dict[str, Any]:
    """Validate and re-serialize the body from New API's SunoSubmitReq fields only."""
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise TaskError("invalid_request", "invalid request body") from None
    if not isinstance(data, dict):
        raise TaskError("invalid_request", "invalid request body")
    out: dict[str, Any] = {k: str(data[k]) for k in STRING_FIELDS if data.get(k)}
    if isinstance(data.get("continue_at"), (int, float)) and data["continue_at"]:
        out["continue_at"] = float(data["continue_at"])
    out["make_instrumental"] = bool(data.get("make_instrumental"))
    if action == "MUSIC":
        out.setdefault("mv", "chirp-v3-0")
    elif action == "LYRICS":
        if not out.get("prompt"):
            raise TaskError("invalid_request", "prompt_empty")
    else:
        raise TaskError("invalid_request", "invalid_action")
    if out.get("continue_clip_id") and not out.get("task_id"):
        raise TaskError("invalid_request", "task id is empty")
    return out


def _find(user_id: int, task_id: str) -> Task | None:
    return Task.objects.filter(user_id=user_id, task_id=task_id, platform=PLATFORM).order_by("-id").first()


async def submit(req: ClientRequest, action: str) -> Response:
    caller = await routing.authenticate(req)
    try:
        return await _submit(req, caller, action.upper())
    except TaskError as err:
        return err.response()


def should_retry(err: TaskError) -> bool:
    """Text-relay rules, except that a 400 never retries: it is the request's fault."""
    if not err.upstream:
        return False
    status = err.status
    if status in NO_RETRY_STATUSES or status in (400, 408) or 200 <= status < 300:
        return False
    return status in (401, 403, 307, 429) or status >= 500


async def _submit(req: ClientRequest, caller: Caller, action: str) -> Response:
    body = build_request(action, req.body)
    model = f"{PLATFORM}_{action.lower()}"
    route: Route | None = None  # a continuation must reach the account that made the clip: no other
    if body.get("continue_clip_id"):
        origin = await sync_to_async(_find)(caller.user.id, body["task_id"])
        if origin is None:
            raise TaskError("task_not_exist", "task_not_exist")
        channel = await choice.channel_by_id(int(origin.channel_id))
        if channel is None or channel.status != ChannelStatus.ENABLED:
            raise TaskError("task_channel_disable", "task_channel_disable")
    else:
        route = routing.route(caller, model)
        channel = await route.first()
    q = charging.quote(model, caller.group)
    try:
        hold = await charging.reserve(caller, q.quota)
    except charging.NotEnough:
        raise TaskError("quota_not_enough", "quota_not_enough", 403) from None
    try:
        channel, resp, envelope = await attempt_all(req, route, action, body, channel)
    except BaseException:
        await hold.refund()
        raise
    task_id = str(envelope.get("data") or "")
    task = Task(
        platform=PLATFORM,
        user_id=caller.user.id,
        channel_id=channel.id,
        token_id=caller.token.id,
        action=action,
        submit_time=int(time.time()),
        status="NOT_START",
        progress="0%",
        task_id=task_id,
        quota=q.quota,
        properties={"input": body.get("prompt") or body.get("gpt_description_prompt") or ""},
    )
    await sync_to_async(task.save)()
    await charging.charge(hold, caller, q, channel.id, action, req.started)
    content_type = resp.headers.get("content-type", "application/json").encode()
    return Response(200, resp.content, content_type)


async def attempt_all(
    req: ClientRequest, route: Route | None, action: str, body: dict[str, Any], channel: ChannelInfo
) -> tuple[ChannelInfo, httpx.Response, dict[str, Any]]:
    """Submit on `channel`, then on the route's next channels while the failure is retryable."""
    while True:
        try:
            resp, envelope = await send(req, channel, action, body)
            return channel, resp, envelope
        except TaskError as err:
            nxt = await route.another() if route is not None and should_retry(err) else None
            if nxt is None:
                raise
            channel = nxt


async def send(
    req: ClientRequest, channel: ChannelInfo, action: str, body: dict[str, Any]
) -> tuple[httpx.Response, dict[str, Any]]:
    headers = {"authorization": f"Bearer {channel.key}", "content-type": "application/json"}
    if req.headers.get("accept"):
        headers["accept"] = req.headers["accept"]
    try:
        resp = await http.client_for(proxies.of(channel)).post(
            f"{channel.base_url}/suno/submit/{action}",
            headers=headers,
            content=orjson.dumps(body),
            timeout=60,
        )
    except httpx.HTTPError:
        raise TaskError("do_request_failed", "请求上游地址失败", 500, upstream=True) from None
    if resp.status_code != 200:
        raise TaskError("fail_to_fetch_task", resp.text, resp.status_code, upstream=True)
    try:
        envelope = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        raise TaskError(
            "unmarshal_response_body_failed", "unmarshal_response_body_failed", 500, upstream=True
        ) from None
    if not isinstance(envelope, dict) or envelope.get("code") != "success":
        code = str(envelope.get("code")) if isinstance(envelope, dict) else "unknown"
        message = str(envelope.get("message")) if isinstance(envelope, dict) else ""
        raise TaskError(code, message, 500, upstream=True)
    return resp, envelope


def task_dto(task: Task) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "action": task.action,
        "status": task.status,
        "fail_reason": task.fail_reason or "",
        "submit_time": task.submit_time,
        "start_time": task.start_time,
        "finish_time": task.finish_time,
        "progress": task.progress,
        "data": task.data,
    }


def _list(user_id: int, ids: list[str]) -> list[Task]:
    return list(Task.objects.filter(user_id=user_id, platform=PLATFORM, task_id__in=ids).order_by("id"))


async def fetch_many(req: ClientRequest, **_: Any) -> Response:
    caller = await routing.authenticate(req)
    try:
        body = orjson.loads(req.body) if req.body else {}
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        return TaskError("invalid_request", "invalid request body").response()
    ids = [str(i) for i in body.get("ids") or [] if isinstance(i, (str, int))]
    tasks = await sync_to_async(_list)(caller.user.id, ids) if ids else []
    return Response(
        200, orjson.dumps({"code": "success", "message": "", "data": [task_dto(t) for t in tasks]})
    )


async def fetch_one(req: ClientRequest, id: str, **_: Any) -> Response:
    caller = await routing.authenticate(req)
    task = await sync_to_async(_find)(caller.user.id, id)
    if task is None:
        return TaskError("task_not_exist", "task_not_exist").response()
    return Response(200, orjson.dumps({"code": "success", "message": "", "data": task_dto(task)}))
