"""The services' refusals (and a few of their labels) in the reader's language on the pages.

The services (and `/api`) answer in New API's Chinese wording, which clients may match on; the
pages show the English text for English readers. The Chinese catalogue translates each English
text back to the service's own words. Messages not listed here are shown as they are.
"""

from __future__ import annotations

import re

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

REFUSALS: dict[str, Promise] = {
    "用户名或密码错误，或用户已被封禁": _("Wrong username or password, or the account is banned"),
    "用户已被封禁": _("This account is banned"),
    "用户已注销": _("This account has been deleted"),
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
    "过期时间无效": _("Invalid expiry time"),
    "过期时间不能早于当前时间": _("The expiry time cannot be in the past"),
    "令牌已过期，无法启用，请先修改令牌过期时间，或者设置为永不过期": _(
        "The token has expired: change its expiry (or make it never expire) before enabling it"
    ),
    "令牌可用额度已用尽，无法启用，请先修改令牌剩余额度，或者设置为无限额度": _(
        "The token's quota is used up: raise it (or make it unlimited) before enabling it"
    ),
    "周期预算额度必须大于 0 (budget_quota must be positive)": _("A periodic budget needs a positive quota"),
    "未提供兑换码": _("Enter a redemption code"),
    "无效的兑换码": _("Invalid redemption code"),
    "该兑换码已被使用": _("This code has already been used"),
    "该兑换码已被禁用": _("This code is disabled"),
    "重置链接非法或已过期": _("The reset link is invalid or has expired"),
    "该邮箱地址未注册": _("No account uses this email address"),
    "邀请额度不足": _("Not enough invitation reward"),
    "当前管理员未配置支付信息": _("Online payment is not configured"),
    "充值金额过低": _("The amount is too small to pay"),
    "时间跨度不能超过 1 个月": _("The time span cannot exceed one month"),
    "Turnstile token 为空": _("Complete the Turnstile check first"),
    "Turnstile 校验失败，请刷新重试！": _("The Turnstile check failed: reload the page and try again"),
    "Turnstile 校验请求失败，请稍后重试 (verification service unavailable)": _(
        "The Turnstile check could not be made: try again later"
    ),
    "无效的参数": _("Invalid parameters"),
    "SMTP 服务器未配置": _("Email is not configured on this server"),
    "管理员启用了邮箱域名白名单，您的邮箱地址的域名不在白名单中": _(
        "The administrator allows only some email domains, and this address's domain is not one of them"
    ),
    "管理员已启用邮箱地址别名限制，您的邮箱地址由于包含特殊符号而被拒绝。": _(
        "The administrator refuses email aliases: this address contains a special character"
    ),
    "无效的通知类型": _("Invalid notification type"),
    "额度预警阈值必须大于0": _("The quota warning threshold must be greater than 0"),
    "Webhook地址无效": _("Invalid webhook URL"),
    "无效的邮箱地址": _("Invalid email address"),
    "该账户已被绑定": _("This account is already bound to another user"),
    "该 Telegram 账户未绑定": _("This Telegram account is not bound to any user"),
    "登录信息已过期，请重新登录": _("The sign-in data has expired: sign in again"),
    "无效的请求": _("Invalid request"),
    "创建用户失败，请重试": _("Could not create the account: try again"),
    "第三方登录服务返回了无效的响应": _("The sign-in provider sent an invalid answer"),
    "返回值非法，用户字段为空，请稍后重试！": _("The sign-in provider sent no user: try again later"),
    "管理员未开启通过 GitHub 登录以及注册": _("Sign-in with GitHub is turned off"),
    "GitHub 授权失败": _("GitHub authorization failed"),
    "管理员未开启通过 OIDC 登录以及注册": _("Sign-in with OIDC is turned off"),
    "OIDC 获取 Token 失败，请检查设置！": _("OIDC: could not get a token (check the settings)"),
    "OIDC 获取用户信息失败！请检查设置！": _("OIDC: could not get the user's details (check the settings)"),
    "管理员未开启通过 Linux DO 登录以及注册": _("Sign-in with Linux DO is turned off"),
    "Linux DO 授权失败": _("Linux DO authorization failed"),
    "管理员未开启通过微信登录以及注册": _("Sign-in with WeChat is turned off"),
    "管理员未开启通过 Telegram 登录以及注册": _("Sign-in with Telegram is turned off"),
    "state is empty or not same": _("The sign-in attempt expired or came from elsewhere: start again"),
    # Group descriptions: the services' own, and New API's default UserUsableGroups.
    "默认分组": _("Default group"),
    "用户分组": _("Your group"),
    "vip分组": _("VIP group"),
}

# Refusals that carry a value; the catalogue's Chinese keeps the service's wording around it.
PATTERNS: list[tuple[re.Pattern[str], Promise]] = [
    (re.compile(r"IP 白名单格式错误：(?P<entry>.*)"), _("Not an IP address or CIDR range: %(entry)s")),
    (re.compile(r"分组 (?P<group>.+) 不可用"), _("Group %(group)s is not available")),
    (
        re.compile(r"转移额度最小为 (?P<amount>\S+)（(?P<units>\d+)）"),
        _("The smallest transfer is %(amount)s (%(units)s units)"),
    ),
    (re.compile(r"充值数量不能小于 (?P<minimum>\d+)"), _("The amount must be at least %(minimum)s")),
    (
        re.compile(r"无效的参数: (?P<name>\w+) 超出范围 \(out of range\)"),
        _("Invalid value for %(name)s: out of range"),
    ),
    (re.compile(r"无效的参数: (?P<name>\w+)"), _("Invalid value for %(name)s")),
    (
        re.compile(r"密码不能超过 (?P<limit>\d+) 字节 \(.*\)"),
        _("The password cannot be longer than %(limit)s bytes"),
    ),
    (
        re.compile(r"无法连接至第三方登录服务器: (?P<error>\w+)"),
        _("Cannot reach the sign-in provider (%(error)s)"),
    ),
]


def readable(message: str) -> str:
    known = REFUSALS.get(message)
    if known is not None:
        return str(known)
    for pattern, text in PATTERNS:
        found = pattern.fullmatch(message)
        if found:
            return str(text) % found.groupdict()
    return message
