"""Root-only option edits, validated before anything is written."""

from __future__ import annotations

import json
from typing import Any

from newapi_site.api.base import ApiError
from newapi_site.option_defaults import DEFAULT_OPTIONS
from newapi_site.options import options, update_option

# Enabling a login method needs its client id (or server) configured first.
_REQUIRES = {
    "GitHubOAuthEnabled": (
        "GitHubClientId",
        "无法启用 GitHub OAuth，请先填入 GitHub Client Id 以及 GitHub Client Secret！",
    ),
    "oidc.enabled": (
        "oidc.client_id",
        "无法启用 OIDC 登录，请先填入 OIDC Client Id 以及 OIDC Client Secret！",
    ),
    "LinuxDOOAuthEnabled": (
        "LinuxDOClientId",
        "无法启用 LinuxDO OAuth，请先填入 LinuxDO Client Id 以及 LinuxDO Client Secret！",
    ),
    "EmailDomainRestrictionEnabled": (
        "EmailDomainWhitelist",
        "无法启用邮箱域名限制，请先填入限制的邮箱域名！",
    ),
    "WeChatAuthEnabled": ("WeChatServerAddress", "无法启用微信登录，请先填入微信登录相关配置信息！"),
    "TurnstileCheckEnabled": (
        "TurnstileSiteKey",
        "无法启用 Turnstile 校验，请先填入 Turnstile 校验相关配置信息！",
    ),
    "TelegramOAuthEnabled": ("TelegramBotToken", "无法启用 Telegram OAuth，请先填入 Telegram Bot Token！"),
}
# Options stored as JSON: a value that does not parse is refused instead of saved broken.
_JSON_OBJECTS = {
    "ModelRatio",
    "ModelPrice",
    "CompletionRatio",
    "CacheRatio",
    "GroupRatio",
    "UserUsableGroups",
    "TopupGroupRatio",
}
_JSON_ANY = {"Chats"}
_NON_NEGATIVE_INTS = {"LogRetentionDays"}
_RATIO_MAPS = {"ModelRatio", "ModelPrice", "CompletionRatio", "CacheRatio", "GroupRatio", "TopupGroupRatio"}


def value_as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def check_option(key: str, value: str) -> None:
    if key in _NON_NEGATIVE_INTS and not value.strip().isdigit():
        raise ApiError(f"{key} 必须是非负整数")
    if key in _REQUIRES and value == "true":
        needed, message = _REQUIRES[key]
        if not options.get(needed).strip():
            raise ApiError(message)
    if key in _JSON_OBJECTS or key in _JSON_ANY:
        try:
            parsed = json.loads(value)
        except ValueError:
            raise ApiError(f"{key} 不是合法的 JSON") from None
        if key in _JSON_OBJECTS and not isinstance(parsed, dict):
            raise ApiError(f"{key} 必须是 JSON 对象")
        if key in _RATIO_MAPS:
            for name, ratio in parsed.items():
                if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio < 0:
                    raise ApiError(f"{key} 中 {name} 的值必须是非负数")


def set_option(key: str, value: Any) -> None:
    if not isinstance(key, str) or not key.strip():
        raise ApiError("无效的参数", status=400)
    text = value_as_string(value)
    check_option(key, text)
    update_option(key, text)


def reset_model_ratio() -> None:
    update_option("ModelRatio", DEFAULT_OPTIONS["ModelRatio"])  # registered by billing
