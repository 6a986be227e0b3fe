"""Third-party logins (management.md §3.5): GitHub, OIDC, Linux DO, WeChat and Telegram.

Each provider turns a callback into an `Identity`; `complete_login` then binds it to the logged-in
user, logs the owner in, or registers a new account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from accounts.models import User
from newapi_site.api.base import ApiError
from newapi_site.options import options
from newapi_site.roles import USER_ENABLED

from .users import _after_register, new_aff_code

LINUXDO_TOKEN_URL = "https://connect.linux.do/oauth2/token"
LINUXDO_USER_URL = "https://connect.linux.do/api/user"
TELEGRAM_MAX_AGE = 24 * 3600  # New API never checked auth_date, so a captured login URL replayed forever
_TIMEOUT = 20


@dataclass
class Identity:
    field: str  # the users column: github_id, oidc_id, linux_do_id, wechat_id, telegram_id
    value: str
    provider: str  # username prefix and label
    display_name: str = ""
    email: str = ""
    username: str = ""
    # What older bindings stored instead of `value` (GitHub: the login); converted on first use.
    legacy_value: str = ""


def new_state(session, aff: str) -> str:
    state = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
    session["oauth_state"] = state
    session["aff"] = aff
    return state


def check_state(session, state: str) -> None:
    expected = session.get("oauth_state")
    if not expected or not state or not hmac.compare_digest(str(expected), state):
        raise ApiError("state is empty or not same", status=403)


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        raise ApiError("第三方登录服务返回了无效的响应") from None
    if not isinstance(data, dict):
        raise ApiError("第三方登录服务返回了无效的响应")
    return data


def _http_error(exc: httpx.HTTPError) -> ApiError:
    return ApiError(f"无法连接至第三方登录服务器: {exc.__class__.__name__}")


# -- providers --------------------------------------------------------------------------------
def github_identity(code: str) -> Identity:
    if not options.get_bool("GitHubOAuthEnabled"):
        raise ApiError("管理员未开启通过 GitHub 登录以及注册")
    try:
        token_url = settings.GITHUB_OAUTH_URL.rstrip("/") + "/login/oauth/access_token"
        token = _json(
            httpx.post(
                token_url,
                timeout=_TIMEOUT,
                headers={"Accept": "application/json"},
                json={
                    "client_id": options.get("GitHubClientId"),
                    "client_secret": options.get("GitHubClientSecret"),
                    "code": code,
                },
            )
        ).get("access_token")
        if not token:
            raise ApiError("GitHub 授权失败")
        user_url = settings.GITHUB_API_URL.rstrip("/") + "/user"
        user = _json(httpx.get(user_url, timeout=_TIMEOUT, headers={"Authorization": f"Bearer {token}"}))
    except httpx.HTTPError as exc:
        raise _http_error(exc) from None
    github_id = user.get("id")
    if (
        not user.get("login")
        or isinstance(github_id, bool)
        or not isinstance(github_id, int)
        or github_id <= 0
    ):
        raise ApiError("返回值非法，用户字段为空，请稍后重试！")
    # Bound by the numeric id: a login can be renamed, and then registered by someone else.
    return Identity(
        "github_id",
        str(github_id),
        "github",
        user.get("name") or "GitHub User",
        user.get("email") or "",
        legacy_value=str(user["login"]),
    )


def oidc_identity(code: str) -> Identity:
    if not options.get_bool("oidc.enabled"):
        raise ApiError("管理员未开启通过 OIDC 登录以及注册")
    redirect = (options.get("ServerAddress") or "http://localhost:3000").rstrip("/") + "/oauth/oidc"
    try:
        token = _json(
            httpx.post(
                options.get("oidc.token_endpoint"),
                timeout=_TIMEOUT,
                data={
                    "client_id": options.get("oidc.client_id"),
                    "client_secret": options.get("oidc.client_secret"),
                    "code": code,
                    "grant_type": "authorization_code",
                    "redirect_uri": redirect,
                },
                headers={"Accept": "application/json"},
            )
        ).get("access_token")
        if not token:
            raise ApiError("OIDC 获取 Token 失败，请检查设置！")
        info = _json(
            httpx.get(
                options.get("oidc.user_info_endpoint"),
                timeout=_TIMEOUT,
                headers={"Authorization": f"Bearer {token}"},
            )
        )
    except httpx.HTTPError as exc:
        raise _http_error(exc) from None
    if not info.get("sub") or not info.get("email"):
        raise ApiError("OIDC 获取用户信息失败！请检查设置！")
    return Identity(
        "oidc_id",
        str(info["sub"]),
        "oidc",
        info.get("name") or "OIDC User",
        str(info["email"]),
        str(info.get("preferred_username") or ""),
    )


def linuxdo_identity(code: str, redirect_uri: str) -> Identity:
    if not options.get_bool("LinuxDOOAuthEnabled"):
        raise ApiError("管理员未开启通过 Linux DO 登录以及注册")
    try:
        token = _json(
            httpx.post(
                LINUXDO_TOKEN_URL,
                timeout=_TIMEOUT,
                auth=(options.get("LinuxDOClientId"), options.get("LinuxDOClientSecret")),
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
                headers={"Accept": "application/json"},
            )
        ).get("access_token")
        if not token:
            raise ApiError("Linux DO 授权失败")
        user = _json(
            httpx.get(LINUXDO_USER_URL, timeout=_TIMEOUT, headers={"Authorization": f"Bearer {token}"})
        )
    except httpx.HTTPError as exc:
        raise _http_error(exc) from None
    if not user.get("id"):
        raise ApiError("返回值非法，用户字段为空，请稍后重试！")
    return Identity("linux_do_id", str(user["id"]), "linuxdo", user.get("name") or user.get("username") or "")


def wechat_identity(code: str) -> Identity:
    if not options.get_bool("WeChatAuthEnabled"):
        raise ApiError("管理员未开启通过微信登录以及注册")
    try:
        data = _json(
            httpx.get(
                options.get("WeChatServerAddress").rstrip("/") + "/api/wechat/user",
                params={"code": code},
                timeout=_TIMEOUT,
                headers={"Authorization": options.get("WeChatServerToken")},
            )
        )
    except httpx.HTTPError as exc:
        raise _http_error(exc) from None
    if not data.get("success") or not data.get("data"):
        raise ApiError(str(data.get("message") or "验证码错误或已过期"))
    return Identity("wechat_id", str(data["data"]), "wechat", "WeChat User")


def telegram_identity(params: dict[str, str]) -> Identity:
    """Verify a Telegram Login Widget callback: HMAC-SHA256 over the sorted fields, and a fresh auth_date."""
    if not options.get_bool("TelegramOAuthEnabled"):
        raise ApiError("管理员未开启通过 Telegram 登录以及注册")
    received = params.get("hash", "")
    check = "\n".join(f"{k}={params[k]}" for k in sorted(params) if k != "hash")
    secret = hashlib.sha256(options.get("TelegramBotToken").encode()).digest()
    expected = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    if not received or not hmac.compare_digest(expected, received):
        raise ApiError("无效的请求")
    try:
        age = time.time() - int(params.get("auth_date", "0"))
    except ValueError:
        raise ApiError("无效的请求") from None
    if age > TELEGRAM_MAX_AGE or age < -300:
        raise ApiError("登录信息已过期，请重新登录")
    if not params.get("id"):
        raise ApiError("无效的请求")
    return Identity("telegram_id", params["id"], "telegram", params.get("first_name") or "")


# -- bind / login / register -----------------------------------------------------------------
def _bound(identity: Identity):
    values = [identity.value] + ([identity.legacy_value] if identity.legacy_value else [])
    return User.objects.filter(**{f"{identity.field}__in": values})


def bind_identity(user: User, identity: Identity) -> None:
    if _bound(identity).exclude(pk=user.pk).exists():
        raise ApiError("该账户已被绑定")
    setattr(user, identity.field, identity.value)
    user.save(update_fields=[identity.field])


def login_or_register(identity: Identity, aff: str = "", *, allow_register: bool = True) -> User:
    qs = User.objects.filter(**{identity.field: identity.value})
    if identity.field == "oidc_id":
        qs = qs.filter(deleted_at__isnull=True)
    user = qs.order_by("id").first()
    if user is None and identity.legacy_value:
        user = _migrate_legacy(identity)
    if user is not None:
        if user.deleted_at is not None:
            raise ApiError("用户已注销")
        if user.status != USER_ENABLED:
            raise ApiError("用户已被封禁")
        return user
    if not allow_register:
        raise ApiError("该 Telegram 账户未绑定")
    if not options.get_bool("RegisterEnabled"):
        raise ApiError("管理员关闭了新用户注册")
    inviter = User.live.filter(aff_code=aff).first() if aff else None
    user = _create_oauth_user(identity, inviter)
    _after_register(user, inviter, password_signup=False)
    return user


def _migrate_legacy(identity: Identity) -> User | None:
    """An account bound the old way (by a value that can change hands) now gets the stable one."""
    user = User.objects.filter(**{identity.field: identity.legacy_value}).order_by("id").first()
    if user is not None:
        setattr(user, identity.field, identity.value)
        user.save(update_fields=[identity.field])
    return user


def _create_oauth_user(identity: Identity, inviter: User | None) -> User:
    preferred = identity.username if identity.username and len(identity.username) <= 12 else ""
    for attempt in range(5):
        if preferred and attempt == 0 and not User.objects.filter(username=preferred).exists():
            username = preferred
        else:
            next_id = (User.objects.aggregate(m=Max("id"))["m"] or 0) + 1 + attempt
            username = f"{identity.provider}_{next_id}"
        user = User(
            username=username,
            display_name=identity.display_name[:20] or username,
            email=identity.email,
            quota=options.get_int("QuotaForNewUser"),
            aff_code=new_aff_code(),
            inviter_id=inviter.pk if inviter else 0,
            **{identity.field: identity.value},
        )
        user.set_password(secrets.token_urlsafe(24))  # no password login until the user sets one
        try:
            with transaction.atomic():
                user.save()
            return user
        except IntegrityError:  # another sign-up took the name: try the next one
            continue
    raise ApiError("创建用户失败，请重试")
