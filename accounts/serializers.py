"""JSON shapes of users and tokens (New API's struct tags), and the validated request bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rest_framework import serializers

from .limits import Int64Field, PasswordBytesMixin
from .models import BUDGET_PERIODS, Token, User


def _deleted_at(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def render_user(user: User, *, with_secrets: bool = False) -> dict[str, Any]:
    """A user row; `password` is always blank. `access_token` only for the user themself."""
    return {
        "id": user.pk,
        "username": user.username,
        "password": "",
        "display_name": user.display_name or "",
        "role": user.role,
        "status": user.status,
        "email": user.email or "",
        "github_id": user.github_id or "",
        "oidc_id": user.oidc_id or "",
        "wechat_id": user.wechat_id or "",
        "telegram_id": user.telegram_id or "",
        "linux_do_id": user.linux_do_id or "",
        "verification_code": "",
        "access_token": (user.access_token or "") if with_secrets else "",
        "quota": user.quota,
        "used_quota": user.used_quota,
        "request_count": user.request_count,
        "group": user.group,
        "aff_code": user.aff_code or "",
        "aff_count": user.aff_count,
        "aff_quota": user.aff_quota,
        "aff_history_quota": user.aff_history,
        "inviter_id": user.inviter_id or 0,
        "DeletedAt": _deleted_at(user.deleted_at),
        "setting": user.setting or "",
    }


def render_login(user: User) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.username,
        "display_name": user.display_name or "",
        "role": user.role,
        "status": user.status,
        "group": user.group,
    }


def render_token(token: Token) -> dict[str, Any]:
    """Only ever called on the caller's own tokens (see accounts/services/tokens.py `tokens_of`)."""
    return {
        "id": token.pk,
        "user_id": token.user_id,
        "key": token.key,
        "status": token.status,
        "name": token.name or "",
        "created_time": token.created_time,
        "accessed_time": token.accessed_time,
        "expired_time": token.expired_time,
        "remain_quota": token.remain_quota,
        "unlimited_quota": token.unlimited_quota,
        "model_limits_enabled": token.model_limits_enabled,
        "model_limits": token.model_limits or "",
        "allow_ips": token.allow_ips or "",
        "used_quota": token.used_quota,
        "group": token.group or "",
        "budget_period": token.budget_period or "",
        "budget_quota": token.budget_quota or 0,
        "DeletedAt": _deleted_at(token.deleted_at),
    }


# -- request bodies ------------------------------------------------------------------------
class LenientChar(serializers.CharField):
    """New API's UI sometimes sends null for optional strings."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("trim_whitespace", True)
        super().__init__(**kwargs)


class Password(PasswordBytesMixin, serializers.CharField):
    pass


class LenientPassword(PasswordBytesMixin, LenientChar):
    pass


class RegisterBody(serializers.Serializer):
    username = serializers.CharField(max_length=12)
    password = Password(min_length=8, max_length=20, trim_whitespace=False)
    display_name = LenientChar(max_length=20)
    email = LenientChar(max_length=50)
    verification_code = LenientChar()
    aff_code = LenientChar()


class LoginBody(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False)


class SelfUpdateBody(serializers.Serializer):
    username = LenientChar(max_length=12)
    display_name = LenientChar(max_length=20)
    password = LenientPassword(min_length=8, max_length=20, trim_whitespace=False)
    original_password = LenientChar(trim_whitespace=False)


class AdminCreateUserBody(serializers.Serializer):
    username = serializers.CharField(max_length=12)
    password = Password(min_length=8, max_length=20, trim_whitespace=False)
    display_name = LenientChar(max_length=20)
    role = Int64Field(required=False, default=1)


class AdminUpdateUserBody(serializers.Serializer):
    id = Int64Field()
    username = LenientChar(max_length=12)
    display_name = LenientChar(max_length=20)
    group = LenientChar(max_length=64)
    quota = Int64Field(required=False, allow_null=True)
    password = LenientPassword(min_length=8, max_length=20, trim_whitespace=False)
    email = LenientChar(max_length=50)


class ManageUserBody(serializers.Serializer):
    id = Int64Field()
    action = serializers.ChoiceField(choices=["disable", "enable", "delete", "promote", "demote"])


class TokenBody(serializers.Serializer):
    name = LenientChar(max_length=30)
    expired_time = Int64Field(required=False, default=-1)
    remain_quota = Int64Field(required=False, default=0, min_value=0)
    unlimited_quota = serializers.BooleanField(required=False, default=False)
    model_limits_enabled = serializers.BooleanField(required=False, default=False)
    model_limits = LenientChar(max_length=1024)
    allow_ips = LenientChar()
    group = LenientChar(max_length=64)
    budget_period = serializers.ChoiceField(
        choices=["", *BUDGET_PERIODS], required=False, allow_null=True, allow_blank=True
    )
    budget_quota = Int64Field(required=False, allow_null=True, min_value=0)


class TokenUpdateBody(TokenBody):
    id = Int64Field()
    status = Int64Field(required=False)


class TokenStatusBody(serializers.Serializer):
    id = Int64Field()
    status = serializers.ChoiceField(choices=[1, 2])


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
