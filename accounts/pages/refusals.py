"""The services' common refusals in the reader's language on the pages.

The services (and `/api`) answer in New API's Chinese wording, which clients may match on; the
pages show the English text for English readers. Messages not listed here are shown as they are.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

REFUSALS: dict[str, Promise] = {
    "用户名或密码错误，或用户已被封禁": _("Wrong username or password, or the account is banned"),
    "用户已被封禁": _("This account is banned"),
    "管理员关闭了密码登录": _("The administrator has turned password sign-in off"),
    "管理员关闭了新用户注册": _("The administrator has closed registration"),
    "管理员关闭了通过密码进行注册，请使用第三方账户验证的形式进行注册": _(
        "Registration with a password is off: sign up with a third-party account"
    ),
    "验证码错误或已过期": _("The verification code is wrong or has expired"),
    "邮箱地址已被占用": _("This email address is already in use"),
    "用户名已存在，或已注销": _("This username is taken (or belonged to a deleted account)"),
    "原密码错误": _("The current password is wrong"),
    "令牌不存在": _("No such token"),
    "过期时间不能早于当前时间": _("The expiry time cannot be in the past"),
    "令牌已过期，无法启用，请先修改令牌过期时间，或者设置为永不过期": _(
        "The token has expired: change its expiry (or make it never expire) before enabling it"
    ),
    "令牌可用额度已用尽，无法启用，请先修改令牌剩余额度，或者设置为无限额度": _(
        "The token's quota is used up: raise it (or make it unlimited) before enabling it"
    ),
    "未提供兑换码": _("Enter a redemption code"),
    "无效的兑换码": _("Invalid redemption code"),
    "该兑换码已被使用": _("This code has already been used"),
    "该兑换码已被禁用": _("This code is disabled"),
    "重置链接非法或已过期": _("The reset link is invalid or has expired"),
    "该邮箱地址未注册": _("No account uses this email address"),
    "邀请额度不足": _("Not enough invitation reward"),
    "当前管理员未配置支付信息": _("Online payment is not configured"),
    "Turnstile token 为空": _("Complete the Turnstile check first"),
    "Turnstile 校验失败，请刷新重试！": _("The Turnstile check failed: reload the page and try again"),
}


def readable(message: str) -> str:
    known = REFUSALS.get(message)
    return str(known) if known is not None else message
