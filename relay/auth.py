"""Token authentication for the relay, from the in-process cache."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from accounts.models import TOKEN_ENABLED, TOKEN_EXHAUSTED, TOKEN_EXPIRED
from newapi_site import bus
from newapi_site.options import options
from newapi_site.roles import USER_ENABLED
from relay import state
from relay.errors import LocalError
from relay.state import TokenInfo, UserInfo


@dataclass(slots=True)
class Caller:
    token: TokenInfo
    user: UserInfo
    group: str
    pinned_channel_id: int | None


def _auth_error(message: str, status: int = 401) -> LocalError:
    return LocalError(message, status=status, type="new_api_error", code=None)


def is_gemini_path(path: str) -> bool:
    """Gemini's native API, whose clients send the key as ?key= or x-goog-api-key."""
    return path.startswith(("/v1beta/", "/v1/models"))


def query_key(query: str) -> str:
    for name, value in parse_qsl(query):
        if name == "key":
            return value
    return ""


def extract_key(headers: dict[str, str], path: str, query: str = "") -> str:
    if is_gemini_path(path):
        # Google's precedence: the x-goog-api-key header, then ?key=, then Authorization.
        google = headers.get("x-goog-api-key") or (query_key(query) if "key=" in query else "")
        if google:
            return google.strip().removeprefix("sk-")
    protocol = headers.get("sec-websocket-protocol", "")
    if protocol:
        for part in protocol.split(","):
            part = part.strip()
            if part.startswith("openai-insecure-api-key."):
                return part.removeprefix("openai-insecure-api-key.").removeprefix("sk-")
    auth = headers.get("authorization", "")
    if headers.get("x-api-key") and ("/v1/messages" in path or path.startswith("/v1/models")):
        auth = "Bearer " + headers["x-api-key"]
    if not auth and headers.get("x-goog-api-key"):
        auth = headers["x-goog-api-key"]
    key = auth.removeprefix("Bearer ").removeprefix("bearer ").strip()
    if not key or key == "midjourney-proxy":
        key = headers.get("mj-api-secret", "").removeprefix("Bearer ").strip()
    return key.removeprefix("sk-")


def mask(key: str) -> str:
    return f"sk-{key[:3]}***{key[-3:]}" if len(key) > 6 else "sk-***"


async def authenticate(headers: dict[str, str], path: str, query: str = "") -> Caller:
    raw = extract_key(headers, path, query)
    if not raw:
        raise _auth_error("未提供令牌 (no API key provided)")
    key, _, pinned = raw.partition("-")
    seen = bus.dispatched
    try:
        return await _caller(key, pinned)
    except LocalError:
        # Created, enabled or unbanned a moment ago through another process? Look again once
        # this one has applied every change announced so far (a key that cannot exist never was).
        if not state.well_formed(key):
            raise
        await state.caught_up()
        if bus.dispatched == seen:
            raise
        return await _caller(key, pinned)


async def _caller(key: str, pinned: str) -> Caller:
    token = await state.tokens.get(key)
    if token is None:
        raise _auth_error("无效的令牌 (invalid API key)")
    if token.status == TOKEN_EXHAUSTED:
        raise _auth_error(f"该令牌额度已用尽 (token quota exhausted) [{mask(key)}]")
    if token.status == TOKEN_EXPIRED:
        raise _auth_error("该令牌已过期 (token expired)")
    if token.status != TOKEN_ENABLED:
        raise _auth_error("该令牌状态不可用 (token disabled)")
    if token.expired_time != -1 and token.expired_time < time.time():
        raise _auth_error("该令牌已过期 (token expired)")
    user = await state.users.get(token.user_id)
    if user is None:
        raise _auth_error("用户不存在 (user not found)")
    if user.status != USER_ENABLED:
        raise _auth_error("用户已被封禁 (user disabled)", 403)
    pinned_id: int | None = None
    if pinned:
        if user.role < 10:
            raise _auth_error("普通用户不支持指定渠道 (only admins may pin a channel)", 403)
        try:
            pinned_id = int(pinned.split("-")[0])
        except ValueError:
            raise _auth_error("无效的渠道 Id (invalid channel id)", 400) from None
    return Caller(token, user, resolve_group(token, user), pinned_id)


def resolve_group(token: TokenInfo, user: UserInfo) -> str:
    group = user.group or "default"
    if token.group:
        usable = dict(options.get_json("UserUsableGroups", {}) or {})
        usable.setdefault(group, "")
        if token.group not in usable:
            raise _auth_error(f"令牌分组 {token.group} 已被禁用 (token group disabled)", 403)
        if token.group not in (options.get_json("GroupRatio", {}) or {}):
            raise _auth_error(f"分组 {token.group} 已被弃用 (group deprecated)", 403)
        group = token.group
    return group


def check_ip(token: TokenInfo, client_ip: str) -> None:
    if not token.allow_ips:
        return
    try:
        ip = ipaddress.ip_address(client_ip)
    except ValueError:
        raise _auth_error("您的 IP 不在令牌允许访问的列表中 (IP not allowed)", 403) from None
    if ip.version == 6 and ip.ipv4_mapped is not None:  # a dual-stack listener's view of an IPv4 client
        ip = ip.ipv4_mapped
    if not any(ip in net for net in token.allow_ips):
        raise _auth_error("您的 IP 不在令牌允许访问的列表中 (IP not allowed)", 403)


def check_model_allowed(token: TokenInfo, model: str) -> None:
    if token.model_limits_enabled and model not in token.model_limits:
        raise _auth_error(f"该令牌无权访问模型 {model} (token may not use model {model})", 403)
