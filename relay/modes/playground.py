"""POST /pg/chat/completions: the dashboard playground.

A Django view, because the caller is a dashboard session (cookie + `New-Api-User`), never an API
key; access tokens are refused. The chat relay then runs as for /v1/chat/completions, in the
user's group (or a usable `group` from the body), billed to the user alone: there is no token
(token_id 0, never checked or charged), the log's token name is "playground-<group>", and the
per-user model request rate limit does not apply. Errors use OpenAI's `{"error": …}` shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from accounts import sessions
from accounts.models import TOKEN_ENABLED, User
from accounts.services.groups import usable_groups
from billing import writer
from newapi_site import bus, client_ip
from newapi_site.roles import USER_ENABLED
from relay import state
from relay.auth import Caller
from relay.edge.wire import ClientRequest, Response, StreamingResponse, error_response
from relay.errors import LocalError, RelayError, invalid_request
from relay.modes import pipeline
from relay.state import TokenInfo, UserInfo, parse_json_map


def _refuse(message: str, status: int, code: str | None = None) -> LocalError:
    return LocalError(message, status=status, type="new_api_error", code=code)


async def session_user(request: HttpRequest) -> User:
    header_id = request.headers.get("New-Api-User", "").strip()
    authorization = request.headers.get("Authorization", "").strip()
    if authorization:
        token = authorization.removeprefix("Bearer ").strip()
        if token and await User.live.filter(access_token=token).aexists():
            raise _refuse(
                "暂不支持使用 access token (access tokens are not supported here)",
                400,
                "access_token_not_supported",
            )
        raise _refuse("无权进行此操作，access token 无效", 401)
    user_id = await request.session.aget("id")
    if user_id is None:
        raise _refuse("无权进行此操作，未登录 (not logged in)", 401)
    user = await User.live.filter(pk=user_id).afirst()
    if user is None or not sessions.is_current(request.session, user):
        raise _refuse("无权进行此操作，未登录 (not logged in)", 401)
    if not header_id:
        raise _refuse("无权进行此操作，未提供 New-Api-User", 401)
    if header_id != str(user.pk):
        raise _refuse("无权进行此操作，New-Api-User 与登录用户不匹配", 401)
    if user.status != USER_ENABLED:
        raise _refuse("用户已被封禁 (user disabled)", 403)
    return user


def choose_group(user: User, requested: object) -> str:
    own = user.group or "default"
    if requested in (None, ""):
        return own
    if not isinstance(requested, str):
        raise invalid_request("group must be a string")
    if requested != own and requested not in usable_groups(own):
        raise _refuse(f"无权访问 {requested} 分组 (group not allowed)", 403, "group_not_allowed")
    return requested


def playground_caller(user: User, group: str) -> Caller:
    token = TokenInfo(
        id=0,
        user_id=user.pk,
        key="",
        name=f"playground-{group}",
        status=TOKEN_ENABLED,
        expired_time=-1,
        unlimited_quota=True,
        model_limits_enabled=False,
        model_limits=frozenset(),
        allow_ips=(),
        group=group,
    )
    info = UserInfo(
        id=user.pk,
        username=user.username,
        group=user.group or "default",
        status=int(user.status),
        role=int(user.role),
        email=user.email or "",
        setting=parse_json_map(user.setting),
    )
    return Caller(token, info, group, None)


def _client_ip(request: HttpRequest) -> str:
    return client_ip.from_request(request)


async def run(request: HttpRequest) -> Response | StreamingResponse:
    user = await session_user(request)
    try:
        body = orjson.loads(request.body) if request.body else None
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"Invalid request body: {exc}", code="invalid_request_body") from None
    if not isinstance(body, dict):
        raise invalid_request("Invalid request body: a JSON object is required", code="invalid_request_body")
    if not body.get("model"):
        raise invalid_request("model is required", code="model_required")
    await state.ensure_options_loaded()
    group = choose_group(user, body.pop("group", None))  # ours, not the provider's: never forwarded
    headers = {"content-type": "application/json"}
    if request.headers.get("Accept"):
        headers["accept"] = request.headers["Accept"]
    req = ClientRequest(
        method="POST",
        path="/v1/chat/completions",
        query="",
        headers=headers,
        body=orjson.dumps(body),
        client_ip=_client_ip(request),
    )
    return await pipeline.relay_as(playground_caller(user, group), req, "chat")


@csrf_exempt  # like /api: a SameSite=Strict cookie plus the New-Api-User header
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    bus.ensure_listener()
    writer.start_background_writer()
    if request.method != "POST":
        return _http(error_response(_refuse(f"Invalid URL ({request.method} {request.path})", 404)))
    try:
        response = await run(request)
    except RelayError as err:
        response = error_response(err)
    if isinstance(response, StreamingResponse):
        started: list[bool] = []
        out = StreamingHttpResponse(_relay_chunks(response, started), status=response.status)
        _close_if_never_started(response, started)
        for name, value in response.headers:
            out[name.decode("latin-1")] = value.decode("latin-1")
        return out
    return _http(response)


def _http(response: Response) -> HttpResponse:
    out = HttpResponse(
        response.body, status=response.status, content_type=response.content_type.decode("latin-1")
    )
    for name, value in response.headers:
        out[name.decode("latin-1")] = value.decode("latin-1")
    return out


_closing: set[asyncio.Future] = set()


def _close_if_never_started(response: StreamingResponse, started: list[bool]) -> None:
    """A client that leaves between the headers and the first chunk cancels Django's request task
    before it iterates the body (Django swallows that cancel): the generator never runs, so its
    cleanup cannot either. The close hook then runs when that task ends (the view runs in it)."""
    task = asyncio.current_task()
    on_close = response.on_close
    if task is None or on_close is None:
        return

    def done(_ended: asyncio.Future) -> None:
        if not started:  # Django's request task sends the whole body: it ended without doing so
            closing = asyncio.ensure_future(on_close())
            _closing.add(closing)
            closing.add_done_callback(_closing.discard)

    task.add_done_callback(done)


async def _relay_chunks(response: StreamingResponse, started: list[bool]) -> AsyncIterator[bytes]:
    """The relay's chunks, then its close hook, as relay/edge/asgi.py runs them: whether the stream ends,
    breaks or the client leaves, the upstream is closed and an unsettled hold goes back."""
    started.append(True)
    try:
        async for piece in response.chunks:
            yield piece
    finally:
        await response.chunks.aclose()  # the generator's cleanup bills what was produced, also on disconnect
        if response.on_close is not None:
            await response.on_close()
