"""API tokens, always scoped to their owner: every read goes through `tokens_of(user)`."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from accounts import balance
from accounts.models import TOKEN_DISABLED, TOKEN_ENABLED, TOKEN_EXHAUSTED, TOKEN_EXPIRED, Token, User, now_ts
from newapi_site.api.base import ApiError

from .groups import is_usable_group


def tokens_of(user: User) -> QuerySet[Token]:
    return Token.live.filter(user_id=user.pk)


def get_own_token(user: User, token_id: int) -> Token:
    token = tokens_of(user).filter(pk=token_id).first()
    if token is None:
        raise ApiError("令牌不存在")
    return token


def search_tokens(user: User, keyword: str, key_fragment: str) -> QuerySet[Token]:
    qs = tokens_of(user)
    if keyword:
        qs = qs.filter(name__contains=keyword)
    key_fragment = key_fragment.strip().removeprefix("sk-")
    if key_fragment:
        qs = qs.filter(key__contains=key_fragment)
    return qs.order_by("-id")[:100]


def normalize_allow_ips(raw: str | None) -> str:
    """One exact IP or CIDR range per line (commas also separate); anything else is refused."""
    entries = [e.strip() for line in (raw or "").splitlines() for e in line.split(",") if e.strip()]
    normalized = []
    for entry in entries:
        try:
            normalized.append(
                str(ipaddress.ip_network(entry, strict=False))
                if "/" in entry
                else str(ipaddress.ip_address(entry))
            )
        except ValueError:
            raise ApiError(f"IP 白名单格式错误：{entry}") from None
    return "\n".join(dict.fromkeys(normalized))


def normalize_model_limits(raw: str | None) -> str:
    return ",".join(dict.fromkeys(m.strip() for m in (raw or "").split(",") if m.strip()))


def _clean(user: User, data: dict[str, Any]) -> dict[str, Any]:
    group = (data.get("group") or "").strip()
    if group and not is_usable_group(user.group, group):
        raise ApiError(f"分组 {group} 不可用")
    expired = data.get("expired_time", -1)
    if expired != -1 and expired <= 0:
        raise ApiError("过期时间无效")
    fields = {
        "name": (data.get("name") or "").strip(),
        "expired_time": expired,
        "remain_quota": data.get("remain_quota", 0),
        "unlimited_quota": data.get("unlimited_quota", False),
        "model_limits_enabled": data.get("model_limits_enabled", False),
        "model_limits": normalize_model_limits(data.get("model_limits")),
        "allow_ips": normalize_allow_ips(data.get("allow_ips")),
        "group": group,
    }
    # Only when sent: New API's console knows nothing of budgets, and its edits must keep them.
    if "budget_period" in data or "budget_quota" in data:
        period = data.get("budget_period") or ""
        quota = data.get("budget_quota") or 0
        if period and quota <= 0:
            raise ApiError("周期预算额度必须大于 0 (budget_quota must be positive)")
        fields["budget_period"] = period or None
        fields["budget_quota"] = quota if period else None
    return fields


def _apply_budget(token: Token, changed: bool) -> None:
    """A budget makes the token limited; a new or changed budget starts with all of it."""
    if token.budget_period:
        token.unlimited_quota = False
        if changed:
            token.remain_quota = int(token.budget_quota or 0)


def create_token(user: User, data: dict[str, Any]) -> Token:
    fields = _clean(user, data)
    if fields["expired_time"] != -1 and fields["expired_time"] < now_ts():
        raise ApiError("过期时间不能早于当前时间")
    token = Token(user_id=user.pk, **fields)
    _apply_budget(token, changed=True)
    token.save()
    return token


def _is_expired(token: Token) -> bool:
    return token.expired_time != -1 and token.expired_time <= now_ts()


def _is_exhausted(token: Token) -> bool:
    return not token.unlimited_quota and token.remain_quota <= 0


def _check_can_enable(token: Token) -> None:
    if _is_expired(token):
        raise ApiError("令牌已过期，无法启用，请先修改令牌过期时间，或者设置为永不过期")
    if _is_exhausted(token):
        raise ApiError("令牌可用额度已用尽，无法启用，请先修改令牌剩余额度，或者设置为无限额度")


def set_token_status(user: User, token_id: int, status: int) -> Token:
    token = get_own_token(user, token_id)
    if status == TOKEN_ENABLED:
        _check_can_enable(token)
    token.status = status
    token.save(update_fields=["status"])
    return token


def update_token(user: User, token_id: int, data: dict[str, Any]) -> Token:
    token = get_own_token(user, token_id)
    before = {f.attname: getattr(token, f.attname) for f in token._meta.concrete_fields}
    for field, value in _clean(user, data).items():
        setattr(token, field, value)
    _apply_budget(
        token,
        changed=(token.budget_period, token.budget_quota)
        != (before["budget_period"], before["budget_quota"]),
    )
    # A token marked expired/exhausted by the relay comes back once the edit fixed the cause.
    if (
        token.status in (TOKEN_EXPIRED, TOKEN_EXHAUSTED)
        and not _is_expired(token)
        and not _is_exhausted(token)
    ):
        token.status = TOKEN_ENABLED
    if data.get("status") == TOKEN_ENABLED and token.status != TOKEN_ENABLED:
        _check_can_enable(token)
        token.status = TOKEN_ENABLED
    elif data.get("status") == TOKEN_DISABLED:
        token.status = TOKEN_DISABLED
    _save_token_changes(token, before)
    return token


def _save_token_changes(token: Token, before: dict[str, Any]) -> None:
    """Write only what the edit changed; the balance moves through the ledger.

    used_quota, accessed_time and the balance keep changing under billing while the edit runs; a
    whole-row save would put the values read at the start back. A new remain_quota is applied as a
    delta to the database and the Redis mirror, so the next request sees it.
    """
    keeper = balance.keeper()
    changed = [
        name
        for name, value in before.items()
        if getattr(token, name) != value and name not in ("id", "remain_quota")
    ]
    if before["unlimited_quota"] and not token.unlimited_quota:
        keeper.drop_token_mirror(token.pk)  # not kept while unlimited: reload it from the row
    # The balance first: a token re-enabled by this edit must find its new balance at once.
    if token.remain_quota != before["remain_quota"]:
        keeper.set_token_quota(token.pk, token.user_id, token.remain_quota)
    if changed:
        token.save(update_fields=changed)  # post_save tells every process to reload the token
    token.refresh_from_db(fields=["remain_quota", "used_quota", "accessed_time"])


def delete_token(user: User, token_id: int) -> None:
    token = get_own_token(user, token_id)
    token.deleted_at = timezone.now()
    token.save(update_fields=["deleted_at"])
