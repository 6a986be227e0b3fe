"""The Midjourney-Proxy relay: submit, fetch, image-seed, image proxy.

Errors after authentication use midjourney-proxy's shape `{"description", "type", "code"}`
(HTTP 400, 429 for code 30); authentication errors keep the OpenAI shape.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
from asgiref.sync import sync_to_async

from newapi_site.options import options
from relay import state
from relay.auth import Caller
from relay.channels import choice
from relay.channels import health as channel_health
from relay.channels.types import ChannelStatus
from relay.edge.wire import ClientRequest, Response
from relay.state import ChannelInfo
from relay.upstream import http, proxies

from . import charging, routing
from . import mj_actions as A
from .models import Midjourney

ACCEPTED_CODES = {1, 21, 22}
UNFINISHED = "100%"


class MjError(Exception):
    def __init__(self, code: int, description: str, result: str = "", status: int = 400) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.result = result
        self.status = status

    def response(self) -> Response:
        status, result = self.status, self.result
        if self.code == 30:
            status, result = 429, "当前分组负载已饱和，请稍后再试，或升级账户以提升服务质量。"
        body = {
            "description": f"{self.description} {result}".rstrip(),
            "type": "upstream_error",
            "code": self.code,
        }
        return Response(status, orjson.dumps(body))


def now_ms() -> int:
    return int(time.time() * 1000)


# -- upstream ---------------------------------------------------------------------------
def upstream_path(req: ClientRequest) -> str:
    path = req.path
    if "/mj-" in path and "/mj/" in path:
        path = path[path.index("/mj/") :]  # /mj-fast/mj/submit/imagine → /mj/submit/imagine
    return path + (f"?{req.query}" if req.query else "")


def forwarded_body(body: dict[str, Any]) -> dict[str, Any]:
    body = dict(body)
    if not options.get_bool("MjAccountFilterEnabled"):
        body.pop("accountFilter", None)
    if not options.get_bool("MjNotifyEnabled"):
        body.pop("notifyHook", None)
    if options.get_bool("MjModeClearEnabled") and isinstance(body.get("prompt"), str):
        prompt = body["prompt"]
        for flag in ("--fast", "--relax", "--turbo"):
            prompt = prompt.replace(flag, "")
        body["prompt"] = prompt
    return body


async def call_upstream(
    req: ClientRequest, channel: ChannelInfo, body: dict[str, Any] | None, timeout: float = 60
) -> tuple[int, dict[str, Any]]:
    headers = {"mj-api-secret": channel.key}
    for name in ("content-type", "accept"):
        if req.headers.get(name):
            headers[name] = req.headers[name]
    url = channel.base_url + upstream_path(req)
    content = orjson.dumps(forwarded_body(body)) if body is not None else None
    if content is not None:
        headers["content-type"] = "application/json"
    try:
        resp = await http.client_for(proxies.of(channel)).request(
            req.method, url, headers=headers, content=content, timeout=timeout
        )
    except httpx.HTTPError:
        raise MjError(5, "do_request_failed") from None
    if not resp.content:
        raise MjError(5, "empty_response_body")
    try:
        data = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        raise MjError(5, "unmarshal_response_body_failed") from None
    if not isinstance(data, dict):
        raise MjError(5, "unmarshal_response_body_failed")
    return resp.status_code, data


# -- submit -----------------------------------------------------------------------------
def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise MjError(4, "bind_request_body_failed") from None
    if not isinstance(data, dict):
        raise MjError(4, "bind_request_body_failed")
    return data


SIMPLE_KINDS = {
    "describe": A.DESCRIBE,
    "blend": A.BLEND,
    "shorten": A.SHORTEN,
    "upload-discord-images": A.UPLOAD,
    "video": A.VIDEO,
    "edits": A.EDITS,
}


def resolve_action(kind: str, body: dict[str, Any]) -> tuple[str, str]:
    """(action, origin task id or "") for one submit endpoint."""
    try:
        if kind == "imagine":
            if not body.get("prompt"):
                raise MjError(4, "prompt_is_required")
            return A.IMAGINE, ""
        if kind in SIMPLE_KINDS:
            return SIMPLE_KINDS[kind], ""
        if kind == "simple-change":
            task_id, action, _index = A.parse_simple_change(str(body.get("content") or ""))
            return action, task_id
        if kind == "action":
            action, _index = A.action_from_custom_id(str(body.get("customId") or ""))
        elif kind == "modal":
            action = A.MODAL
        else:  # change
            action = str(body.get("action") or "").upper()
            if not body.get("taskId"):
                raise MjError(4, "task_id_is_required")
            if not action:
                raise MjError(4, "action_is_required")
            if not body.get("index"):
                raise MjError(4, "index_is_required")
    except A.ActionError as exc:
        raise MjError(4, str(exc)) from None
    task_id = str(body.get("taskId") or "")
    if not task_id:
        raise MjError(4, "task_id_is_required")
    return action, task_id


def _find_task(user_id: int, mj_id: str) -> Midjourney | None:
    return Midjourney.objects.filter(user_id=user_id, mj_id=mj_id).order_by("-id").first()


async def origin_channel(task: Midjourney) -> ChannelInfo:
    channel = await choice.channel_by_id(int(task.channel_id))
    if channel is None:
        raise MjError(4, "get_channel_info_failed")
    if channel.status != ChannelStatus.ENABLED:
        raise MjError(4, "该任务所属渠道已被禁用 (the task's channel is disabled)")
    return channel


async def submit(req: ClientRequest, kind: str) -> Response:
    caller = await routing.authenticate(req)
    try:
        return await _submit(req, caller, kind)
    except MjError as err:
        return err.response()


async def _submit(req: ClientRequest, caller: Caller, kind: str) -> Response:
    body = parse_json(req.body)
    action, origin_id = resolve_action(kind, body)
    model = A.model_for(action)
    prompt = str(body.get("prompt") or "")
    if origin_id:
        origin = await sync_to_async(_find_task)(caller.user.id, origin_id)
        if origin is None:
            raise MjError(4, "task_not_found")
        if (
            options.get_bool("MjActionCheckSuccessEnabled")
            and origin.status != "SUCCESS"
            and action != A.MODAL
        ):
            raise MjError(4, "task_status_not_success")
        channel = await origin_channel(origin)  # follow-ups must reach the account that holds the image
        prompt = origin.prompt or ""
    else:
        channel = await routing.route(caller, model).first()
    consume = action not in A.FREE_ACTIONS
    q = charging.quote(model, caller.group)
    try:
        hold = await charging.reserve(caller, q.quota, free=not consume)
    except charging.NotEnough:
        raise MjError(4, "quota_not_enough") from None
    try:
        status, data = await call_upstream(req, channel, body)
    except BaseException:
        await hold.refund()
        raise
    code = c if isinstance(c := data.get("code"), int) else 0
    result = data.get("result")
    mj_id = result if isinstance(result, str) else ""
    accepted = status == 200 and code in ACCEPTED_CODES
    task = Midjourney(
        code=code,
        user_id=caller.user.id,
        action=action,
        mj_id=mj_id,
        prompt=prompt,
        description=str(data.get("description") or ""),
        submit_time=now_ms(),
        progress="0%",
        status="",
        channel_id=channel.id,
        token_id=caller.token.id,
    )
    if accepted:
        apply_accepted(task, action, code, data)
    else:
        # A refused submit is finished at once: nothing to poll, nothing charged.
        task.fail_reason = task.description or f"upstream status {status}"
        task.status, task.progress = "FAILURE", "100%"
        if code == 3:
            await disable_channel(channel, "No available account instance")
    if accepted and consume:
        task.quota = q.quota
        await charging.charge(hold, caller, q, channel.id, action, req.started, mj_id)
    else:
        await hold.refund()
    await sync_to_async(task.save)()
    if code in (21, 22) and action not in A.FREE_ACTIONS:
        data["code"] = 1
    return Response(status, orjson.dumps(data))


def apply_accepted(task: Midjourney, action: str, code: int, data: dict[str, Any]) -> None:
    if action == A.UPLOAD:
        task.progress, task.status = "100%", "SUCCESS"
    if code == 21:
        props = p if isinstance(p := data.get("properties"), dict) else {}
        if isinstance(props.get("imageUrl"), str) and isinstance(props.get("status"), str):
            task.image_url, task.status = props["imageUrl"], props["status"]
            if props["status"] == "SUCCESS":
                task.progress = "100%"
                task.start_time = task.finish_time = now_ms()
                task.code = 1


async def disable_channel(channel: ChannelInfo, reason: str) -> None:
    """Status 3 (automatically disabled, so channel tests may enable it again), like other fatal errors."""
    if not (channel.auto_ban and options.get_bool("AutomaticDisableChannelEnabled")):
        return
    state.channels.mark_disabled(channel.id)
    await sync_to_async(channel_health.disable_channel)(channel.id, reason)


async def swap_face(req: ClientRequest) -> Response:
    caller = await routing.authenticate(req)
    try:
        body = parse_json(req.body)
        if not body.get("sourceBase64") or not body.get("targetBase64"):
            raise MjError(4, "sour_base64_and_target_base64_is_required")
        q = charging.quote("swap_face", caller.group)
        channel = await routing.route(caller, "swap_face").first()
        try:
            hold = await charging.reserve(caller, q.quota)
        except charging.NotEnough:
            raise MjError(4, "quota_not_enough") from None
        try:
            status, data = await call_upstream(req, channel, body)
        except BaseException:
            await hold.refund()
            raise
        accepted = status == 200 and data.get("code") == 1
        mj_id = r if isinstance(r := data.get("result"), str) else ""
        task = Midjourney(
            code=c if isinstance(c := data.get("code"), int) else 0,
            user_id=caller.user.id,
            action=A.SWAP_FACE,
            mj_id=mj_id,
            prompt="InsightFace",
            description=str(data.get("description") or ""),
            submit_time=int(req.started * 1000),
            start_time=now_ms(),
            progress="0%",
            channel_id=channel.id,
            token_id=caller.token.id,
        )
        if accepted:
            task.quota = q.quota
            await charging.charge(hold, caller, q, channel.id, A.SWAP_FACE, req.started)
        else:
            task.status, task.progress, task.fail_reason = "FAILURE", "100%", task.description
            await hold.refund()
        await sync_to_async(task.save)()
        return Response(status, orjson.dumps(data))
    except MjError as err:
        return err.response()


# -- reads ------------------------------------------------------------------------------
def image_url_for(task: Midjourney) -> str:
    url = task.image_url or ""
    if url and options.get_bool("MjForwardUrlEnabled"):
        url = f"{options.get('ServerAddress', '').rstrip('/')}/mj/image/{task.mj_id}"
        if task.status != "SUCCESS":
            url += f"?rand={time.time_ns()}"
    return url


def _json_or(raw: str | None, default: Any) -> Any:
    if not raw:
        return default
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return default


def task_dto(task: Midjourney) -> dict[str, Any]:
    return {
        "id": task.mj_id,
        "action": task.action,
        "customId": "",
        "botType": "",
        "prompt": task.prompt or "",
        "promptEn": task.prompt_en or "",
        "description": task.description or "",
        "state": task.state or "",
        "submitTime": task.submit_time,
        "startTime": task.start_time,
        "finishTime": task.finish_time,
        "imageUrl": image_url_for(task),
        "status": task.status or "",
        "progress": task.progress or "",
        "failReason": task.fail_reason or "",
        "buttons": _json_or(task.buttons, None),
        "maskBase64": "",
        "properties": _json_or(task.properties, None),
    }


async def fetch(req: ClientRequest, id: str, **_: Any) -> Response:
    caller = await routing.authenticate(req)
    task = await sync_to_async(_find_task)(caller.user.id, id)
    if task is None:
        return MjError(4, "task_no_found").response()
    return Response(200, orjson.dumps(task_dto(task)))


def _list(user_id: int, ids: list[str]) -> list[Midjourney]:
    return list(Midjourney.objects.filter(user_id=user_id, mj_id__in=ids).order_by("id"))


async def list_by_condition(req: ClientRequest, **_: Any) -> Response:
    caller = await routing.authenticate(req)
    try:
        body = parse_json(req.body)
    except MjError:
        return MjError(4, "do_request_failed").response()
    ids = [str(i) for i in body.get("ids") or [] if isinstance(i, (str, int))]
    tasks = await sync_to_async(_list)(caller.user.id, ids) if ids else []
    return Response(200, orjson.dumps([task_dto(t) for t in tasks]))


async def image_seed(req: ClientRequest, id: str, **_: Any) -> Response:
    caller = await routing.authenticate(req)
    try:
        task = await sync_to_async(_find_task)(caller.user.id, id)
        if task is None:
            raise MjError(4, "task_no_found")
        channel = await origin_channel(task)
        status, data = await call_upstream(req, channel, None, timeout=30)
        out = {k: data.get(k) for k in ("code", "description", "properties", "result")}
        return Response(status, orjson.dumps(out))
    except MjError as err:
        return err.response()


def _image_source(mj_id: str) -> str | None:
    return Midjourney.objects.filter(mj_id=mj_id).order_by("-id").values_list("image_url", flat=True).first()


async def image(req: ClientRequest, id: str, **_: Any) -> Response:
    """Public: proxies a task's image so clients never see the upstream's address."""
    url = await sync_to_async(_image_source)(id)
    if not url:
        return Response(400, orjson.dumps({"error": "midjourney_task_not_found"}))
    try:
        resp = await http.client().get(url, timeout=60)
    except httpx.HTTPError:
        return Response(500, orjson.dumps({"error": "http_get_image_failed"}))
    if resp.status_code != 200:
        return Response(resp.status_code, orjson.dumps({"error": resp.text}))
    content_type = resp.headers.get("content-type") or "image/jpeg"
    return Response(200, resp.content, content_type.encode())
