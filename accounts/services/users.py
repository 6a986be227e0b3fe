"""Accounts: registration, login, self-service, access tokens, invitations and admin management."""

from __future__ import annotations

import secrets
import string
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts import balance, sessions
from accounts.models import Token, User, generate_key
from accounts.signals import user_registered
from newapi_site import bus
from newapi_site.api.base import ApiError
from newapi_site.options import options
from newapi_site.roles import ROLE_ADMIN, ROLE_COMMON, ROLE_ROOT, USER_DISABLED, USER_ENABLED

_AFF_ALPHABET = string.ascii_letters + string.digits


# -- registration and login ---------------------------------------------------------------
def username_taken(username: str) -> bool:
    """Soft-deleted accounts keep their username (New API refuses reuse too)."""
    return User.objects.filter(username=username).exists()


def new_aff_code() -> str:
    for _ in range(10):
        code = "".join(secrets.choice(_AFF_ALPHABET) for _ in range(4))
        if not User.objects.filter(aff_code=code).exists():
            return code
    return "".join(secrets.choice(_AFF_ALPHABET) for _ in range(8))  # 4 chars exhausted: go longer


def register_user(data: dict[str, Any], *, email_verified: bool = False) -> User:
    if not options.get_bool("RegisterEnabled"):
        raise ApiError("管理员关闭了新用户注册")
    if not options.get_bool("PasswordRegisterEnabled"):
        raise ApiError("管理员关闭了通过密码进行注册，请使用第三方账户验证的形式进行注册")
    email = (data.get("email") or "").strip()
    if options.get_bool("EmailVerificationEnabled") and not email_verified:
        from .email import check_code

        if not email or not check_code(email, data.get("verification_code") or "", "v", consume=True):
            raise ApiError("验证码错误或已过期")
    if options.get_bool("EmailVerificationEnabled") and User.objects.filter(email=email).exists():
        raise ApiError("邮箱地址已被占用")
    username = data["username"].strip()
    if username_taken(username):
        raise ApiError("用户名已存在，或已注销")
    inviter = None
    if data.get("aff_code"):
        inviter = User.live.filter(aff_code=data["aff_code"]).first()
    user = User(
        username=username,
        display_name=(data.get("display_name") or username),
        quota=options.get_int("QuotaForNewUser"),
        aff_code=new_aff_code(),
        inviter_id=inviter.pk if inviter else 0,
        email=email if options.get_bool("EmailVerificationEnabled") else "",
    )
    user.set_password(data["password"])
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise ApiError("用户名已存在，或已注销") from None
    _after_register(user, inviter, password_signup=True)
    return user


def _after_register(user: User, inviter: User | None, *, password_signup: bool) -> None:
    """The inviter's counters here; gifts and their log lines are billing's (user_registered)."""
    inviter_bonus = options.get_int("QuotaForInviter") if inviter is not None else 0
    if inviter is not None:
        User.objects.filter(pk=inviter.pk).update(
            aff_count=F("aff_count") + 1,
            aff_quota=F("aff_quota") + inviter_bonus,
            aff_history=F("aff_history") + inviter_bonus,
        )
        bus.publish(f"user:{inviter.pk}")
    user_registered.send(sender=User, user=user, inviter=inviter, inviter_bonus=inviter_bonus)
    if password_signup and settings.GENERATE_DEFAULT_TOKEN:
        Token.objects.create(
            user_id=user.pk,
            name=f"{user.username}的初始令牌",
            key=generate_key(),
            expired_time=-1,
            remain_quota=500000,
            unlimited_quota=True,
        )


def authenticate_user(username: str, password: str) -> User:
    if not options.get_bool("PasswordLoginEnabled"):
        raise ApiError("管理员关闭了密码登录")
    user = User.live.filter(Q(username=username) | (Q(email=username) & ~Q(email=""))).order_by("id").first()
    if user is None or not user.check_password(password):
        raise ApiError("用户名或密码错误，或用户已被封禁")
    if user.status != USER_ENABLED:
        raise ApiError("用户已被封禁")
    return user


def start_session(session, user: User) -> None:
    sessions.start(session, user)


# -- self-service ----------------------------------------------------------------------------
def _columns(user: User) -> dict[str, Any]:
    return {f.attname: getattr(user, f.attname) for f in user._meta.concrete_fields if not f.primary_key}


def _save_changes(user: User, before: dict[str, Any]) -> None:
    """Write only the columns this edit changed.

    The row was read when the request was authenticated; writing it whole would put back the
    quota, role or status it held then over a concurrent charge, top-up, ban or aff transfer.
    """
    changed = [name for name, value in _columns(user).items() if before[name] != value]
    if changed:
        user.save(update_fields=changed)


def update_self(user: User, data: dict[str, Any]) -> User:
    before = _columns(user)
    username = (data.get("username") or "").strip()
    if username and username != user.username:
        if username_taken(username):
            raise ApiError("用户名已存在，或已注销")
        user.username = username
    if data.get("display_name"):
        user.display_name = data["display_name"]
    if data.get("password"):
        # New API changed passwords without the old one; a stolen session must not be enough.
        if not user.check_password(data.get("original_password") or ""):
            raise ApiError("原密码错误")
        user.set_password(data["password"])
    _save_changes(user, before)
    return user


def soft_delete_user(user: User) -> None:
    if user.role >= ROLE_ROOT:
        raise ApiError("不能删除超级管理员账户")
    user.deleted_at = timezone.now()
    user.save(update_fields=["deleted_at"])


def generate_access_token(user: User) -> str:
    user.access_token = uuid.uuid4().hex
    user.save(update_fields=["access_token"])
    return user.access_token


def ensure_aff_code(user: User) -> str:
    if not user.aff_code:
        user.aff_code = new_aff_code()
        user.save(update_fields=["aff_code"])
    return user.aff_code


def transfer_aff_quota(user: User, amount: int) -> None:
    per_unit = options.get_int("QuotaPerUnit", 500000)
    if amount < per_unit:
        raise ApiError(f"转移额度最小为 ${1:.2f}（{per_unit}）")
    # One conditional UPDATE moves both columns: nothing can be spent twice or minted in between.
    moved = User.objects.filter(pk=user.pk, aff_quota__gte=amount).update(
        aff_quota=F("aff_quota") - amount, quota=F("quota") + amount
    )
    if not moved:
        raise ApiError("邀请额度不足")
    balance.keeper().credited_elsewhere(user.pk, amount)


# -- admin ------------------------------------------------------------------------------------
def all_users() -> QuerySet[User]:
    return User.objects.order_by("-id")


def search_users(keyword: str, group: str) -> QuerySet[User]:
    qs = User.objects.all()
    if keyword:
        cond = Q(username__contains=keyword) | Q(email__contains=keyword) | Q(display_name__contains=keyword)
        if keyword.isdigit():
            cond |= Q(pk=int(keyword))
        qs = qs.filter(cond)
    if group:
        qs = qs.filter(group=group)
    return qs.order_by("-id")


def _target(actor: User, user_id: int) -> User:
    """A user the actor may manage: strictly lower role, unless the actor is root."""
    target = User.objects.filter(pk=user_id).first()
    if target is None:
        raise ApiError("用户不存在")
    if actor.role <= target.role and actor.role < ROLE_ROOT:
        raise ApiError("无权获取同级或更高等级用户的信息")
    return target


def get_user_for(actor: User, user_id: int) -> User:
    return _target(actor, user_id)


def create_user_by_admin(actor: User, data: dict[str, Any]) -> User:
    if data.get("role", ROLE_COMMON) >= actor.role:
        raise ApiError("无法创建权限大于等于自己的用户")
    username = data["username"].strip()
    if username_taken(username):
        raise ApiError("用户名已存在，或已注销")
    user = User(username=username, display_name=data.get("display_name") or username, aff_code=new_aff_code())
    user.set_password(data["password"])
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise ApiError("用户名已存在，或已注销") from None
    return user


def update_user_by_admin(actor: User, data: dict[str, Any]) -> User:
    user = _target(actor, data["id"])
    before = _columns(user)
    if data.get("username") and data["username"] != user.username:
        if username_taken(data["username"]):
            raise ApiError("用户名已存在，或已注销")
        user.username = data["username"]
    if data.get("display_name") is not None:
        user.display_name = data["display_name"]
    if data.get("group"):
        user.group = data["group"]
    if data.get("email") is not None:
        user.email = data["email"]
    if data.get("password"):
        user.set_password(data["password"])
    _save_changes(user, before)
    new_quota = data.get("quota")
    if new_quota is not None:
        # "Set to X" becomes a delta against the value replaced, in the DB and the Redis mirror alike.
        keeper = balance.keeper()
        old_quota = keeper.set_user_quota(user.pk, new_quota)
        if old_quota is not None and new_quota != old_quota:
            keeper.log_quota_edit(user.pk, user.username, old_quota, new_quota)
        user.refresh_from_db()
    return user


def manage_user(actor: User, user_id: int, action: str) -> User:
    user = _target(actor, user_id)
    before = _columns(user)
    if action in ("disable", "delete", "demote") and user.role >= ROLE_ROOT:
        raise ApiError("无法对超级管理员用户执行此操作")
    if action == "disable":
        user.status = USER_DISABLED
    elif action == "enable":
        user.status = USER_ENABLED
    elif action == "delete":
        user.deleted_at = timezone.now()
    elif action == "promote":
        if actor.role < ROLE_ROOT:
            raise ApiError("普通管理员用户无法提升其他用户为管理员")
        if user.role >= ROLE_ADMIN:
            raise ApiError("该用户已经是管理员")
        user.role = ROLE_ADMIN
    elif action == "demote":
        if user.role == ROLE_COMMON:
            raise ApiError("该用户已经是普通用户")
        user.role = ROLE_COMMON
    _save_changes(user, before)
    return user


def hard_delete_user(actor: User, user_id: int) -> None:
    user = _target(actor, user_id)
    if user.role >= ROLE_ROOT:
        raise ApiError("无法删除超级管理员用户")
    with transaction.atomic():
        Token.objects.filter(user_id=user.pk).delete()  # sends post_delete per token: caches dropped
        user.delete()


def update_notification_setting(user: User, data: dict[str, Any]) -> dict[str, Any]:
    """PUT /api/user/setting: replaces users.setting (management.md §3.12)."""
    import json
    from urllib.parse import urlparse

    notify_type = data.get("notify_type") or "email"
    if notify_type not in ("email", "webhook"):
        raise ApiError("无效的通知类型")
    threshold = data.get("quota_warning_threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold <= 0:
        raise ApiError("额度预警阈值必须大于0")
    setting: dict[str, Any] = {
        "notify_type": notify_type,
        "quota_warning_threshold": threshold,
        "accept_unset_model_ratio_model": bool(data.get("accept_unset_model_ratio_model")),
    }
    if notify_type == "webhook":
        url = str(data.get("webhook_url") or "")
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ApiError("Webhook地址无效")
        setting["webhook_url"] = url
        if data.get("webhook_secret"):
            setting["webhook_secret"] = str(data["webhook_secret"])
    else:
        email = str(data.get("notification_email") or "")
        if email and "@" not in email:
            raise ApiError("无效的邮箱地址")
        if email:
            setting["notification_email"] = email
    user.setting = json.dumps(setting, ensure_ascii=False)
    user.save(update_fields=["setting"])
    return setting
